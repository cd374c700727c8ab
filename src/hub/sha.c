/*
 * sha.c — SHA-256 and SHA-1 (FIPS 180-4), and the check of a downloaded
 * blob against its ETag.
 *
 * The hub names every file by a digest of its content: LFS files (weights) by
 * their SHA-256, regular git files (configs, tokenizers) by their git blob id,
 * the SHA-1 of "blob <size>\0" followed by the bytes. Checking both means no
 * corrupted or tampered file enters the cache. Written here rather than
 * linked from a crypto library because these are the only two primitives
 * needed and the build should not grow a dependency for them; speed is not a
 * concern next to the network.
 */
#include "hub.h"

#include <stdio.h>
#include <string.h>

#include "core/util.h"

static inline uint32_t rotr32(uint32_t x, unsigned n) { return (x >> n) | (x << (32 - n)); }
static inline uint32_t rotl32(uint32_t x, unsigned n) { return (x << n) | (x >> (32 - n)); }

static inline uint32_t load_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void store_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* ---- SHA-256 ------------------------------------------------------------ */

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static void sha256_block(uint32_t h[8], const uint8_t *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = load_be32(p + 4 * i);
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = rotr32(w[i - 15], 7) ^ rotr32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotr32(w[i - 2], 17) ^ rotr32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (rotr32(e, 6) ^ rotr32(e, 11) ^ rotr32(e, 25)) + ((e & f) ^ (~e & g)) +
                      K256[i] + w[i];
        uint32_t t2 = (rotr32(a, 2) ^ rotr32(a, 13) ^ rotr32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += k;
}

void ember_sha256_init(ember_sha256 *s) {
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, iv, sizeof iv);
    s->len = 0;
}

/* Shared by both hashes: feed whole 64-byte blocks to `block`, keep the rest. */
static void md_update(uint32_t *h, uint64_t *len, uint8_t buf[64], const uint8_t *p, size_t n,
                      void (*block)(uint32_t *, const uint8_t *)) {
    size_t have = (size_t)(*len % 64);
    *len += n;
    if (have) {
        size_t take = EMBER_MIN(64 - have, n);
        memcpy(buf + have, p, take);
        p += take;
        n -= take;
        if (have + take < 64)
            return;
        block(h, buf);
    }
    for (; n >= 64; p += 64, n -= 64)
        block(h, p);
    if (n)
        memcpy(buf, p, n);
}

static void md_final(uint32_t *h, uint64_t len, uint8_t buf[64],
                     void (*block)(uint32_t *, const uint8_t *)) {
    size_t have = (size_t)(len % 64);
    buf[have++] = 0x80;
    if (have > 56) {
        memset(buf + have, 0, 64 - have);
        block(h, buf);
        have = 0;
    }
    memset(buf + have, 0, 56 - have);
    uint64_t bits = len * 8;
    for (int i = 0; i < 8; i++)
        buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    block(h, buf);
}

static void sha256_block_cb(uint32_t *h, const uint8_t *p) { sha256_block(h, p); }

void ember_sha256_update(ember_sha256 *s, const void *data, size_t n) {
    md_update(s->h, &s->len, s->buf, data, n, sha256_block_cb);
}

void ember_sha256_final(ember_sha256 *s, uint8_t out[32]) {
    md_final(s->h, s->len, s->buf, sha256_block_cb);
    for (int i = 0; i < 8; i++)
        store_be32(out + 4 * i, s->h[i]);
}

/* ---- SHA-1 -------------------------------------------------------------- */

static void sha1_block(uint32_t *h, const uint8_t *p) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = load_be32(p + 4 * i);
    for (int i = 16; i < 80; i++)
        w[i] = rotl32(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t t = rotl32(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rotl32(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void ember_sha1_init(ember_sha1 *s) {
    s->h[0] = 0x67452301;
    s->h[1] = 0xefcdab89;
    s->h[2] = 0x98badcfe;
    s->h[3] = 0x10325476;
    s->h[4] = 0xc3d2e1f0;
    s->len = 0;
}

void ember_sha1_update(ember_sha1 *s, const void *data, size_t n) {
    md_update(s->h, &s->len, s->buf, data, n, sha1_block);
}

void ember_sha1_final(ember_sha1 *s, uint8_t out[20]) {
    md_final(s->h, s->len, s->buf, sha1_block);
    for (int i = 0; i < 5; i++)
        store_be32(out + 4 * i, s->h[i]);
}

/* ---- blob digests --------------------------------------------------------- */

void ember_hub_hex(const uint8_t *bytes, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Case-insensitive equality of two ASCII strings (etags may be uppercase). */
static bool ascii_ieq(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        char x = (*a >= 'A' && *a <= 'Z') ? (char)(*a + 32) : *a;
        char y = (*b >= 'A' && *b <= 'Z') ? (char)(*b + 32) : *b;
        if (x != y)
            return false;
    }
    return *a == *b;
}

static bool all_hex(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return s[n] == '\0';
}

void ember_hub_digest_init(ember_hub_digest *d, const char *etag, int64_t size) {
    memset(d, 0, sizeof *d);
    size_t n = strlen(etag);
    if (n == 64 && all_hex(etag, 64)) {
        d->kind = 1;
        ember_sha256_init(&d->sha256);
    } else if (n == 40 && all_hex(etag, 40) && size >= 0) {
        d->kind = 2;
        ember_sha1_init(&d->sha1);
        char head[32];
        int hl = snprintf(head, sizeof head, "blob %lld", (long long)size);
        ember_sha1_update(&d->sha1, head, (size_t)hl + 1); /* the NUL is part of it */
    }
}

void ember_hub_digest_update(ember_hub_digest *d, const void *data, size_t n) {
    if (d->kind == 1)
        ember_sha256_update(&d->sha256, data, n);
    else if (d->kind == 2)
        ember_sha1_update(&d->sha1, data, n);
}

ember_status ember_hub_digest_check(ember_hub_digest *d, const char *etag, const char *file) {
    uint8_t raw[32];
    char hex[65];
    if (d->kind == 0)
        return EMBER_OK;
    if (d->kind == 1) {
        ember_sha256_final(&d->sha256, raw);
        ember_hub_hex(raw, 32, hex);
    } else {
        ember_sha1_final(&d->sha1, raw);
        ember_hub_hex(raw, 20, hex);
    }
    if (ascii_ieq(hex, etag))
        return EMBER_OK;
    return ember_error(EMBER_E_NETWORK,
                       "%s: the downloaded content does not match its checksum (expected %s %s, "
                       "got %s); it was discarded. Run again to download it afresh",
                       file, d->kind == 1 ? "sha256" : "git blob sha1", etag, hex);
}

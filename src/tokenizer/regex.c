/*
 * regex.c — patterns of Split pre-tokenizers and Replace normalizers.
 *
 * HF compiles both string and regex patterns to an Oniguruma regex (a string
 * is escaped first). Here a string pattern is searched literally and a regex
 * goes to PCRE2 in UTF + UCP mode, whose syntax and Unicode classes agree
 * with Oniguruma on the patterns tokenizers use. The GPT-2 pattern of the
 * ByteLevel pre-tokenizer never comes here: it has a hand-written matcher.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "internal.h"

ember_status ember_tok_regex_compile(tok_regex *r, const char *pat, size_t len, bool literal,
                                     const char *what) {
    memset(r, 0, sizeof *r);
    if (literal) {
        r->kind = TOK_PAT_STRING;
        r->literal = ember_strndup(pat, len);
        r->literal_len = len;
        return r->literal ? EMBER_OK : EMBER_E_NOMEM;
    }
    r->kind = TOK_PAT_REGEX;
    int err;
    PCRE2_SIZE off;
    pcre2_code *code =
        pcre2_compile((PCRE2_SPTR)pat, len, PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return ember_error(EMBER_E_FORMAT, "%s: invalid regex at offset %zu: %s", what,
                           (size_t)off, (const char *)msg);
    }
    /* JIT makes matching several times faster; without it PCRE2 still works. */
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    r->code = code;
    return EMBER_OK;
}

void ember_tok_regex_free(tok_regex *r) {
    if (r->code)
        pcre2_code_free((pcre2_code *)r->code);
    free(r->literal);
    memset(r, 0, sizeof *r);
}

ember_status ember_tok_regex_next(const tok_regex *r, ember_encoding *enc, const char *s, size_t n,
                                  size_t from, size_t *ms, size_t *me) {
    if (from > n)
        return EMBER_E_NOT_FOUND;
    if (r->kind == TOK_PAT_STRING) {
        size_t L = r->literal_len;
        if (L == 0) {
            /* An empty string pattern matches (empty) everywhere. */
            *ms = *me = from;
            return EMBER_OK;
        }
        for (size_t i = from; i + L <= n; i++) {
            const char *p = memchr(s + i, r->literal[0], n - i - L + 1);
            if (!p)
                break;
            i = (size_t)(p - s);
            if (memcmp(p, r->literal, L) == 0) {
                *ms = i;
                *me = i + L;
                return EMBER_OK;
            }
        }
        return EMBER_E_NOT_FOUND;
    }
    if (!r->code)
        return EMBER_E_NOT_FOUND;
    if (!enc->md) {
        enc->md = pcre2_match_data_create(1, NULL);
        if (!enc->md)
            return ember_error(EMBER_E_NOMEM, "out of memory for regex match data");
    }
    pcre2_match_data *md = enc->md;
    int rc = pcre2_match((const pcre2_code *)r->code, (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK,
                         md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) /* the interpreter has a larger budget */
        rc = pcre2_match((const pcre2_code *)r->code, (PCRE2_SPTR)s, n, from,
                         PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
    if (rc == PCRE2_ERROR_NOMATCH)
        return EMBER_E_NOT_FOUND;
    if (rc < 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        return ember_error(EMBER_E_INTERNAL, "regex match failed: %s", (const char *)msg);
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    *ms = ov[0];
    *me = ov[1];
    if (*me < *ms) /* \K tricks can do this; treat as empty */
        *me = *ms;
    return EMBER_OK;
}

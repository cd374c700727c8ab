/*
 * load.c — ember_tokenizer_load(): reads tokenizer.json (or, for BERT models
 * that ship only vocab.txt, builds the WordPiece tokenizer transformers'
 * BertConverter would build from vocab.txt + tokenizer_config.json), then the
 * sentence-transformers settings next to it, and the small query functions.
 *
 * A component Ember does not implement is refused with EMBER_E_UNSUPPORTED
 * naming it, never approximated; malformed files give EMBER_E_FORMAT with the
 * file and the offending key.
 */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "internal.h"
#include "tokenizer.h"
#include "io/json.h"

#define TOK_MAX_FILE (256u << 20)

void ember_tokenizer_free(ember_tokenizer *t) {
    if (!t)
        return;
    if (t->has_norm)
        ember_tok_norm_free(&t->norm);
    if (t->has_pre)
        ember_tok_pre_free(&t->pre);
    if (t->has_post)
        ember_tok_post_free(&t->post);
    ember_tok_model_free(&t->model);
    for (int i = 0; i < t->n_added; i++) {
        free(t->added[i].content);
        free(t->added[i].ncontent);
    }
    free(t->added);
    ember_tok_trie_free(&t->trie_raw);
    ember_tok_trie_free(&t->trie_norm);
    free(t->id2tok);
    free(t);
}

static ember_status get_bool_def(const json_t *j, const char *key, bool def, bool *out,
                                 const char *what) {
    ember_status st = ember_json_bool(j, key, what, out);
    if (st == EMBER_E_NOT_FOUND) {
        *out = def;
        return EMBER_OK;
    }
    return st;
}

static ember_status add_token(ember_tokenizer *t, const char *content, size_t len, int32_t id,
                              bool special, bool single_word, bool lstrip, bool rstrip,
                              bool normalized) {
    tok_added *na = realloc(t->added, sizeof *na * (size_t)(t->n_added + 1));
    if (!na)
        return ember_error(EMBER_E_NOMEM, "out of memory for added tokens");
    t->added = na;
    tok_added *a = &t->added[t->n_added];
    memset(a, 0, sizeof *a);
    a->content = ember_strndup(content, len);
    if (!a->content)
        return EMBER_E_NOMEM;
    a->len = len;
    a->id = id;
    a->special = special;
    a->single_word = single_word;
    a->lstrip = lstrip;
    a->rstrip = rstrip;
    a->normalized = normalized;
    t->n_added++;
    return EMBER_OK;
}

static ember_status parse_added(const json_t *arr, ember_tokenizer *t, const char *what) {
    if (!arr || json_is_null(arr))
        return EMBER_OK;
    if (!json_is_array(arr))
        return ember_error(EMBER_E_FORMAT, "%s: 'added_tokens' must be an array, found %s", what,
                           ember_json_type_name(arr));
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const json_t *e = json_array_get(arr, i);
        const json_t *c = json_object_get(e, "content");
        const json_t *id = json_object_get(e, "id");
        if (!json_is_object(e) || !json_is_string(c) || !json_is_integer(id) ||
            json_integer_value(id) < 0 || json_integer_value(id) >= EMBER_TOK_MAX_ID)
            return ember_error(EMBER_E_FORMAT,
                               "%s: added_tokens[%zu] needs a 'content' string and an 'id' in [0, %d)",
                               what, i, EMBER_TOK_MAX_ID);
        bool special, sw, ls, rs, norm;
        EMBER_TRY(get_bool_def(e, "special", false, &special, what));
        EMBER_TRY(get_bool_def(e, "single_word", false, &sw, what));
        EMBER_TRY(get_bool_def(e, "lstrip", false, &ls, what));
        EMBER_TRY(get_bool_def(e, "rstrip", false, &rs, what));
        EMBER_TRY(get_bool_def(e, "normalized", !special, &norm, what));
        if (json_string_length(c) == 0)
            continue; /* HF ignores empty added tokens */
        EMBER_TRY(add_token(t, json_string_value(c), json_string_length(c),
                            (int32_t)json_integer_value(id), special, sw, ls, rs, norm));
    }
    return EMBER_OK;
}

/* Normalized contents of normalized added tokens, the id table and the tries. */
ember_status ember_tok_finish(ember_tokenizer *t) {
    ember_encoding *enc = NULL;
    EMBER_TRY(ember_encoding_new(&enc));
    ember_status st = EMBER_OK;
    for (int i = 0; i < t->n_added && st == EMBER_OK; i++) {
        tok_added *a = &t->added[i];
        if (!a->normalized)
            continue;
        if (!t->has_norm) {
            a->ncontent = ember_strndup(a->content, a->len);
            a->nlen = a->len;
            st = a->ncontent ? EMBER_OK : EMBER_E_NOMEM;
            continue;
        }
        tok_nstr in = {0}, out = {0};
        st = ember_tok_nstr_reserve(&in, a->len);
        if (st == EMBER_OK) {
            memcpy(in.b, a->content, a->len);
            for (size_t k = 0; k < a->len; k++)
                in.al[k] = (tok_span){(uint32_t)k, (uint32_t)k + 1};
            in.len = a->len;
            st = ember_tok_normalize(&t->norm, enc, &in, 0, &out);
        }
        if (st == EMBER_OK) {
            a->ncontent = ember_strndup(out.b ? out.b : "", out.len);
            a->nlen = out.len;
            st = a->ncontent ? EMBER_OK : EMBER_E_NOMEM;
        }
        ember_tok_nstr_free(&in);
        ember_tok_nstr_free(&out);
    }
    ember_encoding_free(enc);
    EMBER_TRY(st);
    EMBER_TRY(ember_tok_added_build(t));

    int32_t max_id = t->model.vocab.max_id;
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].id > max_id)
            max_id = t->added[i].id;
    t->vocab_size = max_id + 1;
    t->id2tok = ember_calloc((size_t)t->vocab_size, sizeof *t->id2tok, "token table");
    if (!t->id2tok)
        return EMBER_E_NOMEM;
    for (int32_t i = 0; i < t->model.n_ids; i++)
        t->id2tok[i] = t->model.id2str[i];
    for (int i = 0; i < t->n_added; i++)
        t->id2tok[t->added[i].id] = t->added[i].content;
    return EMBER_OK;
}

static ember_status load_root(json_t *root, const char *what, ember_tokenizer *t) {
    ember_status st = EMBER_OK;
    if (!json_is_object(root)) {
        st = ember_error(EMBER_E_FORMAT, "%s: top level must be an object, found %s", what,
                         ember_json_type_name(root));
        goto done;
    }
    const json_t *model = json_object_get(root, "model");
    if (!model) {
        st = ember_error(EMBER_E_FORMAT, "%s: no 'model'", what);
        goto done;
    }
    if ((st = ember_tok_model_parse(model, &t->model, what)) != EMBER_OK)
        goto done;
    const json_t *n = json_object_get(root, "normalizer");
    if (n && !json_is_null(n)) {
        t->has_norm = true;
        if ((st = ember_tok_norm_parse(n, &t->norm, what)) != EMBER_OK)
            goto done;
    }
    const json_t *p = json_object_get(root, "pre_tokenizer");
    if (p && !json_is_null(p)) {
        t->has_pre = true;
        if ((st = ember_tok_pre_parse(p, &t->pre, what)) != EMBER_OK)
            goto done;
    }
    const json_t *pp = json_object_get(root, "post_processor");
    if (pp && !json_is_null(pp)) {
        t->has_post = true;
        if ((st = ember_tok_post_parse(pp, t, &t->post, what)) != EMBER_OK)
            goto done;
    }
    if ((st = parse_added(json_object_get(root, "added_tokens"), t, what)) != EMBER_OK)
        goto done;
    /* "truncation" and "padding" are left to the caller (as transformers
     * overrides them), and "decoder" is not needed to encode. */
    st = ember_tok_finish(t);
done:
    return st;
}

/* tokenizer.json at `path`; `dir` (or NULL) holds its tokenizer_config.json */
static ember_status load_json(const char *path, const char *dir, ember_tokenizer *t) {
    json_t *root;
    EMBER_TRY(ember_json_load_file(path, TOK_MAX_FILE, &root));
    ember_status st = dir ? ember_tok_apply_class(root, dir) : EMBER_OK;
    if (st == EMBER_OK)
        st = load_root(root, path, t);
    json_decref(root);
    return st;
}

ember_status ember_tok_load_json_buf(const char *data, size_t len, const char *what,
                                     ember_tokenizer **out) {
    ember_error_clear();
    *out = NULL;
    ember_tokenizer *t = ember_calloc(1, sizeof *t, "tokenizer");
    if (!t)
        return EMBER_E_NOMEM;
    json_t *root;
    ember_status st = ember_json_load_buf(data, len, what, &root);
    if (st == EMBER_OK) {
        st = load_root(root, what, t);
        json_decref(root);
    }
    if (st != EMBER_OK) {
        ember_tokenizer_free(t);
        return st;
    }
    *out = t;
    return EMBER_OK;
}

/* tokenizer_config.json value of a special token: "x" or {"content": "x"} */
static const char *cfg_token(const json_t *cfg, const char *key, const char *def) {
    const json_t *v = json_object_get(cfg, key);
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_object(v) && json_is_string(json_object_get(v, "content")))
        return json_string_value(json_object_get(v, "content"));
    return def;
}

ember_status ember_tok_load_vocab_txt(const char *dir, ember_tokenizer *t) {
    char *vpath = ember_path_join(dir, "vocab.txt");
    char *cpath = ember_path_join(dir, "tokenizer_config.json");
    char *data = NULL;
    size_t len = 0;
    json_t *cfg = NULL;
    ember_status st = EMBER_OK;
    if (!vpath || !cpath) {
        st = ember_error(EMBER_E_NOMEM, "out of memory");
        goto done;
    }
    if ((st = ember_read_file(vpath, TOK_MAX_FILE, &data, &len)) != EMBER_OK)
        goto done;
    if (ember_file_exists(cpath)) {
        if ((st = ember_json_load_file(cpath, 16u << 20, &cfg)) != EMBER_OK)
            goto done;
        if (!json_is_object(cfg)) {
            st = ember_error(EMBER_E_FORMAT, "%s: top level must be an object", cpath);
            goto done;
        }
    }
    /* transformers' load_vocab: one token per line, in order (text mode, so
     * "\r\n" ends a line too); a repeated token keeps its last line. */
    tok_model *m = &t->model;
    memset(m, 0, sizeof *m);
    m->kind = TOK_M_WORDPIECE;
    m->vocab.max_id = -1;
    int32_t id = 0;
    for (size_t i = 0; i < len;) {
        size_t e = i;
        while (e < len && data[e] != '\n')
            e++;
        size_t te = e;
        if (te > i && data[te - 1] == '\r')
            te--;
        if ((st = ember_tok_vocab_put(&m->vocab, data + i, te - i, id++)) != EMBER_OK)
            goto done;
        i = e + 1;
    }
    if (m->vocab.count == 0) {
        st = ember_error(EMBER_E_FORMAT, "%s: empty vocabulary", vpath);
        goto done;
    }
    m->n_ids = m->vocab.max_id + 1;
    m->id2str = ember_calloc((size_t)m->n_ids, sizeof *m->id2str, "vocabulary");
    if (!m->id2str) {
        st = EMBER_E_NOMEM;
        goto done;
    }
    for (uint32_t i = 0; i <= m->vocab.mask; i++)
        if (m->vocab.tab[i].id >= 0)
            m->id2str[m->vocab.tab[i].id] = m->vocab.strs + m->vocab.tab[i].off;

    bool lower = true, chinese = true, basic = true, strip_set = false, strip = false;
    const char *what = cpath;
    if (cfg) {
        if ((st = get_bool_def(cfg, "do_lower_case", true, &lower, what)) != EMBER_OK ||
            (st = get_bool_def(cfg, "tokenize_chinese_chars", true, &chinese, what)) != EMBER_OK ||
            (st = get_bool_def(cfg, "do_basic_tokenize", true, &basic, what)) != EMBER_OK)
            goto done;
        st = ember_json_bool(cfg, "strip_accents", what, &strip);
        if (st == EMBER_OK)
            strip_set = true;
        else if (st != EMBER_E_NOT_FOUND)
            goto done;
        st = EMBER_OK;
        const char *cls = cfg_token(cfg, "tokenizer_class", "BertTokenizer");
        if (strncmp(cls, "Bert", 4) != 0) {
            st = ember_error(EMBER_E_UNSUPPORTED,
                             "%s: tokenizer_class '%s' without tokenizer.json is not supported",
                             what, cls);
            goto done;
        }
    }
    if (!basic) {
        st = ember_error(EMBER_E_UNSUPPORTED, "%s: do_basic_tokenize false is not supported", what);
        goto done;
    }
    t->has_norm = true;
    t->norm = (tok_norm){.kind = TOK_N_BERT, .clean_text = true, .chinese = chinese,
                         .lowercase = lower, .strip_accents = strip_set ? strip : lower};
    t->has_pre = true;
    t->pre = (tok_pre){.kind = TOK_P_BERT};
    m->unk = ember_strdup(cfg_token(cfg, "unk_token", "[UNK]"));
    m->prefix = ember_strdup("##");
    if (!m->unk || !m->prefix) {
        st = EMBER_E_NOMEM;
        goto done;
    }
    m->prefix_len = 2;
    m->max_chars = 100;
    m->unk_id = ember_tok_vocab_get(&m->vocab, m->unk, strlen(m->unk));
    if (m->unk_id < 0) {
        st = ember_error(EMBER_E_FORMAT, "%s: unk_token '%s' is not in the vocab", vpath, m->unk);
        goto done;
    }
    /* The special tokens become special added tokens (not normalized); one
     * missing from vocab.txt gets the next free id, as add_special_tokens. */
    static const char *keys[] = {"pad_token", "unk_token", "cls_token", "sep_token", "mask_token"};
    static const char *defs[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
    int32_t ids[5];
    const char *names[5];
    int32_t next = m->vocab.max_id + 1;
    for (int k = 0; k < 5; k++) {
        names[k] = cfg_token(cfg, keys[k], defs[k]);
        ids[k] = ember_tok_vocab_get(&m->vocab, names[k], strlen(names[k]));
        if (ids[k] < 0) {
            int32_t dup = -1;
            for (int q = 0; q < k; q++)
                if (!strcmp(names[q], names[k]))
                    dup = ids[q];
            ids[k] = dup >= 0 ? dup : next++;
        }
        bool seen = false;
        for (int q = 0; q < k; q++)
            seen |= !strcmp(names[q], names[k]);
        if (!seen && (st = add_token(t, names[k], strlen(names[k]), ids[k], true, false, false,
                                     false, false)) != EMBER_OK)
            goto done;
    }
    /* post-processor: [CLS] $A [SEP] */
    t->has_post = true;
    tok_post *pp = &t->post;
    memset(pp, 0, sizeof *pp);
    pp->kind = TOK_PP_TEMPLATE;
    pp->pieces = ember_calloc(3, sizeof *pp->pieces, "template");
    if (!pp->pieces) {
        st = EMBER_E_NOMEM;
        goto done;
    }
    pp->n_pieces = 3;
    pp->strpool = ember_calloc(2, sizeof(char *), "template");
    if (!pp->strpool) {
        st = EMBER_E_NOMEM;
        goto done;
    }
    for (int k = 0; k < 3; k += 2) {
        int src = k == 0 ? 2 : 3; /* cls, sep */
        tok_tpl_piece *pc = &pp->pieces[k];
        pc->ids = malloc(sizeof(int32_t));
        pc->strs = malloc(sizeof(char *));
        char *s = ember_strdup(names[src]);
        if (!pc->ids || !pc->strs || !s) {
            free(s);
            st = ember_error(EMBER_E_NOMEM, "out of memory");
            goto done;
        }
        pp->strpool[pp->n_strpool++] = s;
        pc->ids[0] = ids[src];
        pc->strs[0] = s;
        pc->n = 1;
        pp->n_added++;
    }
    pp->pieces[1].is_seq = 1;
    st = ember_tok_finish(t);
done:
    free(vpath);
    free(cpath);
    free(data);
    if (cfg)
        json_decref(cfg);
    return st;
}

/* max_seq_length / do_lower_case of sentence-transformers, model_max_length
 * of transformers. */
static ember_status read_side_files(const char *dir, ember_tokenizer *t) {
    char *sb = ember_path_join(dir, "sentence_bert_config.json");
    char *tc = ember_path_join(dir, "tokenizer_config.json");
    ember_status st = EMBER_OK;
    int64_t model_max = 0, st_max = 0;
    if (!sb || !tc) {
        st = ember_error(EMBER_E_NOMEM, "out of memory");
        goto done;
    }
    if (ember_file_exists(sb)) {
        json_t *j;
        if ((st = ember_json_load_file(sb, 1u << 20, &j)) != EMBER_OK)
            goto done;
        if (!json_is_object(j)) {
            json_decref(j);
            st = ember_error(EMBER_E_FORMAT, "%s: top level must be an object", sb);
            goto done;
        }
        st = ember_json_int(j, "max_seq_length", sb, &st_max);
        if (st == EMBER_E_NOT_FOUND)
            st = EMBER_OK;
        bool lc = false;
        if (st == EMBER_OK)
            st = get_bool_def(j, "do_lower_case", false, &lc, sb);
        t->do_lower_case = lc;
        json_decref(j);
        if (st != EMBER_OK)
            goto done;
    }
    if (ember_file_exists(tc)) {
        json_t *j;
        if ((st = ember_json_load_file(tc, 16u << 20, &j)) != EMBER_OK)
            goto done;
        const json_t *v = json_object_get(j, "model_max_length");
        /* transformers writes 1e30 (a float) for "no limit" */
        if (json_is_integer(v))
            model_max = json_integer_value(v);
        json_decref(j);
    }
    if (st_max > 0 && st_max <= INT32_MAX)
        t->max_length = (int32_t)st_max;
    else if (model_max > 0 && model_max <= 1000000)
        t->max_length = (int32_t)model_max;
done:
    free(sb);
    free(tc);
    return st;
}

const char *ember_tok_sentencepiece_only(const char *dir) {
    static const char *spm[] = {"sentencepiece.bpe.model", "spiece.model", "tokenizer.model",
                                "sentencepiece.model"};
    char *tj = ember_path_join(dir, "tokenizer.json");
    bool has_json = !tj || ember_file_exists(tj);
    free(tj);
    for (size_t i = 0; !has_json && i < sizeof spm / sizeof *spm; i++) {
        char *p = ember_path_join(dir, spm[i]);
        bool found = p && ember_file_exists(p);
        free(p);
        if (found)
            return spm[i];
    }
    return NULL;
}

/* A directory without tokenizer.json or vocab.txt. SentencePiece models
 * (XLM-R, multilingual-e5, T5...) are read only through the tokenizer.json
 * transformers writes, so say how to produce it when a .model file is there. */
static ember_status no_tokenizer_file(const char *dir) {
    const char *spm = ember_tok_sentencepiece_only(dir);
    if (spm)
        return ember_error(EMBER_E_NOT_FOUND,
                           "%s: has %s but no tokenizer.json; Ember reads SentencePiece "
                           "tokenizers only from tokenizer.json. " EMBER_TOK_SPM_HOWTO
                           " with DIR = \"%s\"",
                           dir, spm, dir);
    return ember_error(EMBER_E_NOT_FOUND, "%s: no tokenizer.json or vocab.txt", dir);
}

ember_status ember_tokenizer_load(const char *path, ember_tokenizer **out) {
    ember_error_clear();
    if (!out)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_tokenizer_load: out is NULL");
    *out = NULL;
    if (!path)
        return ember_error(EMBER_E_INVALID_ARGUMENT, "ember_tokenizer_load: path is NULL");
    ember_tokenizer *t = ember_calloc(1, sizeof *t, "tokenizer");
    if (!t)
        return EMBER_E_NOMEM;
    ember_status st;
    char *dir = NULL, *json = NULL, *vocab = NULL;
    if (ember_dir_exists(path)) {
        dir = ember_strdup(path);
        json = ember_path_join(path, "tokenizer.json");
        vocab = ember_path_join(path, "vocab.txt");
        if (!dir || !json || !vocab) {
            st = ember_error(EMBER_E_NOMEM, "out of memory");
            goto done;
        }
        if (ember_file_exists(json))
            st = load_json(json, dir, t);
        else if (ember_file_exists(vocab))
            st = ember_tok_load_vocab_txt(path, t);
        else
            st = no_tokenizer_file(path);
    } else if (ember_file_exists(path)) {
        dir = ember_strdup(path);
        if (!dir) {
            st = ember_error(EMBER_E_NOMEM, "out of memory");
            goto done;
        }
        char *slash = strrchr(dir, '/');
        if (slash)
            *slash = '\0';
        else
            strcpy(dir, ".");
        st = load_json(path, dir, t);
    } else {
        st = ember_error(EMBER_E_NOT_FOUND, "%s: no such file or directory", path);
    }
    if (st == EMBER_OK)
        st = read_side_files(dir, t);
done:
    free(dir);
    free(json);
    free(vocab);
    if (st != EMBER_OK) {
        ember_tokenizer_free(t);
        return st;
    }
    *out = t;
    return EMBER_OK;
}

int32_t ember_tokenizer_vocab_size(const ember_tokenizer *t) { return t ? t->vocab_size : 0; }

const char *ember_tokenizer_id_to_token(const ember_tokenizer *t, int32_t id) {
    if (!t || id < 0 || id >= t->vocab_size)
        return NULL;
    return t->id2tok[id];
}

int32_t ember_tokenizer_max_length(const ember_tokenizer *t) { return t ? t->max_length : 0; }

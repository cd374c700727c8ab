/*
 * test_tok_units.c — components the goldens do not exercise, each on a small
 * hand-written tokenizer.json. Expectations are reasoned from the Hugging
 * Face Rust sources named next to each case (huggingface/tokenizers,
 * tokenizers/src/...), not from Ember's own output.
 */
#include <unistd.h>

#include "tok_test.h"

static char tmpdir[64];

static ember_tokenizer *load_str(const char *json) {
    char path[128];
    snprintf(path, sizeof path, "%s/tokenizer.json", tmpdir);
    FILE *f = fopen(path, "wb");
    fputs(json, f);
    fclose(f);
    ember_tokenizer *t = NULL;
    if (ember_tokenizer_load(path, &t) != EMBER_OK) {
        fprintf(stderr, "load failed: %s\n  json: %s\n", ember_last_error(), json);
        tt_failures++;
        return NULL;
    }
    return t;
}

/* Tokenizes without specials and compares "tok|tok|..." and, when given,
 * byte offsets "s,e s,e ...". */
static void expect(const char *label, ember_tokenizer *t, const char *text, const char *toks,
                   const char *offs, int add_special) {
    if (!t) {
        tt_failures++;
        fprintf(stderr, "%s: no tokenizer\n", label);
        return;
    }
    ember_encoding *e;
    ember_encoding_new(&e);
    ember_tokenize_options o = ember_tokenize_default_options();
    o.add_special_tokens = add_special;
    ember_status st = ember_tokenize(t, text, strlen(text), &o, e);
    TT_CHECK(st == EMBER_OK, "%s: %s", label, ember_last_error());
    char got[1024] = "", gotoff[1024] = "";
    for (int64_t i = 0; i < ember_encoding_length(e); i++) {
        if (i) {
            strcat(got, "|");
            strcat(gotoff, " ");
        }
        strncat(got, ember_encoding_token(e, i), 100);
        char b[48];
        snprintf(b, sizeof b, "%lld,%lld", (long long)ember_encoding_byte_offsets(e)[2 * i],
                 (long long)ember_encoding_byte_offsets(e)[2 * i + 1]);
        strcat(gotoff, b);
    }
    TT_CHECK(!strcmp(got, toks), "%s: tokens of \"%s\": got \"%s\", expected \"%s\"", label, text,
             got, toks);
    if (offs)
        TT_CHECK(!strcmp(gotoff, offs), "%s: offsets of \"%s\": got \"%s\", expected \"%s\"", label,
                 text, gotoff, offs);
    ember_encoding_free(e);
}

#define WP_VOCAB(extra) \
    "\"model\":{\"type\":\"WordPiece\",\"unk_token\":\"[UNK]\",\"vocab\":{\"[UNK]\":0" extra "}}"

static void split_behaviors(void) {
    /* tokenizer/normalizer.rs, NormalizedString::split doc comment:
     * "the-final--countdown" per SplitDelimiterBehavior. */
    static const char *vocab = WP_VOCAB(",\"the\":1,\"-\":2,\"final\":3,\"countdown\":4,\"the-\":5,"
                                        "\"final-\":6,\"-final\":7,\"-countdown\":8,\"--\":9");
    static const struct {
        const char *beh, *toks;
    } cases[] = {
        {"Removed", "the|final|countdown"},
        {"Isolated", "the|-|final|-|-|countdown"},
        {"MergedWithPrevious", "the-|final-|-|countdown"},
        {"MergedWithNext", "the|-final|-|-countdown"},
        {"Contiguous", "the|-|final|--|countdown"},
    };
    for (size_t i = 0; i < 5; i++) {
        char js[1024];
        snprintf(js, sizeof js,
                 "{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"-+?\"},"
                 "\"behavior\":\"%s\",\"invert\":false},%s}",
                 cases[i].beh, vocab);
        ember_tokenizer *t = load_str(js);
        expect(cases[i].beh, t, "the-final--countdown", cases[i].toks, NULL, 0);
        ember_tokenizer_free(t);
        /* the same with a literal string pattern */
        snprintf(js, sizeof js,
                 "{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"String\":\"-\"},"
                 "\"behavior\":\"%s\"},%s}",
                 cases[i].beh, vocab);
        t = load_str(js);
        expect(cases[i].beh, t, "the-final--countdown", cases[i].toks, NULL, 0);
        ember_tokenizer_free(t);
    }
    /* invert: the regex matches become the kept pieces (pre_tokenizers/split.rs) */
    char js[1024];
    snprintf(js, sizeof js,
             "{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\w+\"},"
             "\"behavior\":\"Removed\",\"invert\":true},%s}",
             vocab);
    ember_tokenizer *t = load_str(js);
    expect("Split invert", t, "the-final--countdown", "the|final|countdown", "0,3 4,9 11,20", 0);
    ember_tokenizer_free(t);
}

static void pretokenizers(void) {
    static const char *vocab =
        WP_VOCAB(",\"\xe2\x96\x81hey\":1,\"\xe2\x96\x81\x66riend\":2,\"hey\":3,\"abc\":4,\"1\":5,"
                 "\"2\":6,\"3\":7,\"123\":8,\"hi\":9,\"!\":10,\"?\":11,\"!?\":12,\"Hey\":13,"
                 "\"friend\":14,\"How\":15,\"a\":16,\".,\":17,\"b\":18,\"friend!\":19");
    char js[2048];
    /* Metaspace (pre_tokenizers/metaspace.rs): ' ' -> '▁', prepended ('always'),
     * split MergedWithNext. The prepended ▁ shares the first char's offsets. */
    snprintf(js, sizeof js,
             "{\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\xe2\x96\x81\","
             "\"prepend_scheme\":\"always\",\"split\":true},%s}",
             vocab);
    ember_tokenizer *t = load_str(js);
    expect("Metaspace always", t, "hey friend", "\xe2\x96\x81hey|\xe2\x96\x81\x66riend", "0,3 3,10",
           0);
    ember_tokenizer_free(t);
    snprintf(js, sizeof js,
             "{\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\xe2\x96\x81\","
             "\"prepend_scheme\":\"never\",\"split\":true},%s}",
             vocab);
    t = load_str(js);
    expect("Metaspace never", t, "hey friend", "hey|\xe2\x96\x81\x66riend", "0,3 3,10", 0);
    ember_tokenizer_free(t);

    /* Digits (pre_tokenizers/digits.rs): Isolated or Contiguous on is_numeric */
    snprintf(js, sizeof js,
             "{\"pre_tokenizer\":{\"type\":\"Digits\",\"individual_digits\":true},%s}", vocab);
    t = load_str(js);
    expect("Digits individual", t, "abc123", "abc|1|2|3", "0,3 3,4 4,5 5,6", 0);
    ember_tokenizer_free(t);
    snprintf(js, sizeof js,
             "{\"pre_tokenizer\":{\"type\":\"Digits\",\"individual_digits\":false},%s}", vocab);
    t = load_str(js);
    expect("Digits contiguous", t, "abc123", "abc|123", "0,3 3,6", 0);
    ember_tokenizer_free(t);

    /* Punctuation (pre_tokenizers/punctuation.rs): default Isolated */
    snprintf(js, sizeof js, "{\"pre_tokenizer\":{\"type\":\"Punctuation\"},%s}", vocab);
    t = load_str(js);
    expect("Punctuation", t, "hi!?", "hi|!|?", "0,2 2,3 3,4", 0);
    ember_tokenizer_free(t);
    snprintf(js, sizeof js,
             "{\"pre_tokenizer\":{\"type\":\"Punctuation\",\"behavior\":\"Contiguous\"},%s}", vocab);
    t = load_str(js);
    expect("Punctuation contiguous", t, "hi!?", "hi|!?", "0,2 2,4", 0);
    ember_tokenizer_free(t);

    /* Whitespace (pre_tokenizers/whitespace.rs): \w+|[^\w\s]+ */
    snprintf(js, sizeof js, "{\"pre_tokenizer\":{\"type\":\"Whitespace\"},%s}", vocab);
    t = load_str(js);
    expect("Whitespace", t, "Hey friend!  How?", "Hey|friend|!|How|?", "0,3 4,10 10,11 13,16 16,17",
           0);
    expect("Whitespace 2", t, "a.,b", "a|.,|b", "0,1 1,3 3,4", 0);
    ember_tokenizer_free(t);
    snprintf(js, sizeof js, "{\"pre_tokenizer\":{\"type\":\"WhitespaceSplit\"},%s}", vocab);
    t = load_str(js);
    expect("WhitespaceSplit", t, "Hey  friend!", "Hey|friend!", "0,3 5,12", 0);
    ember_tokenizer_free(t);

    /* Sequence of pre-tokenizers */
    snprintf(js, sizeof js,
             "{\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":"
             "\"WhitespaceSplit\"},{\"type\":\"Punctuation\"}]},%s}",
             vocab);
    t = load_str(js);
    expect("pre Sequence", t, "Hey friend!", "Hey|friend|!", "0,3 4,10 10,11", 0);
    ember_tokenizer_free(t);
}

static void normalizers(void) {
    static const char *vocab = WP_VOCAB(",\"cbbt\":1,\"\xe2\x96\x81hi\":2,\"hi\":3,\"fi\":4,\"1\":5,"
                                        "\"hello\":6,\"x\":7");
    char js[2048];
    /* Replace (normalizers/replace.rs, NormalizedString::replace) */
    snprintf(js, sizeof js,
             "{\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"String\":\"a\"},"
             "\"content\":\"bb\"},%s}",
             vocab);
    ember_tokenizer *t = load_str(js);
    expect("Replace", t, "cat", "cbbt", "0,3", 0);
    ember_tokenizer_free(t);
    snprintf(js, sizeof js,
             "{\"normalizer\":{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"[0-9]+\"},"
             "\"content\":\"x\"},\"pre_tokenizer\":{\"type\":\"WhitespaceSplit\"},%s}",
             vocab);
    t = load_str(js);
    /* transform_range inserts the content after skipping the match, so it
     * copies the alignment of the match's last character: "123" -> [2,3]. */
    expect("Replace regex", t, "123 4", "x|x", "2,3 4,5", 0);
    ember_tokenizer_free(t);
    /* Prepend (normalizers/prepend.rs) */
    snprintf(js, sizeof js,
             "{\"normalizer\":{\"type\":\"Prepend\",\"prepend\":\"\xe2\x96\x81\"},%s}", vocab);
    t = load_str(js);
    expect("Prepend", t, "hi", "\xe2\x96\x81hi", "0,2", 0);
    ember_tokenizer_free(t);
    /* Strip (normalizers/strip.rs) */
    snprintf(js, sizeof js,
             "{\"normalizer\":{\"type\":\"Strip\",\"strip_left\":true,\"strip_right\":true},%s}",
             vocab);
    t = load_str(js);
    expect("Strip", t, "  hi \t", "hi", "2,4", 0);
    ember_tokenizer_free(t);
    snprintf(js, sizeof js,
             "{\"normalizer\":{\"type\":\"Strip\",\"strip_left\":false,\"strip_right\":true},%s}",
             vocab);
    t = load_str(js);
    expect("Strip right only", t, " hi ", "[UNK]", "0,3", 0);
    ember_tokenizer_free(t);
    /* NFKC (normalizers/unicode.rs): the ligature ﬁ -> "fi", ① -> "1" */
    snprintf(js, sizeof js,
             "{\"normalizer\":{\"type\":\"NFKC\"},\"pre_tokenizer\":{\"type\":"
             "\"WhitespaceSplit\"},%s}",
             vocab);
    t = load_str(js);
    expect("NFKC", t, "\xef\xac\x81 \xe2\x91\xa0", "fi|1", "0,3 4,7", 0);
    ember_tokenizer_free(t);
    /* NFD + StripAccents + Lowercase in a Sequence */
    snprintf(js, sizeof js,
             "{\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFD\"},"
             "{\"type\":\"StripAccents\"},{\"type\":\"Lowercase\"}]},%s}",
             vocab);
    t = load_str(js);
    expect("NFD+StripAccents+Lowercase", t, "H\xc3\xa9llo", "hello", "0,6", 0);
    ember_tokenizer_free(t);
    /* NFKD: "ﬁ" decomposes to two chars sharing the ligature's span */
    snprintf(js, sizeof js, "{\"normalizer\":{\"type\":\"NFKD\"},%s}", vocab);
    t = load_str(js);
    expect("NFKD", t, "\xef\xac\x81", "fi", "0,3", 0);
    ember_tokenizer_free(t);
}

static void processors(void) {
    /* RobertaProcessing with trim_offsets (processors/roberta.rs, and
     * process_offsets in pre_tokenizers/byte_level.rs): "Ġb" loses its space. */
#define ROBERTA(trim)                                                                             \
    "{\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":"     \
    "true,\"use_regex\":true},\"model\":{\"type\":\"BPE\",\"vocab\":{\"<s>\":0,\"<pad>\":1,"    \
    "\"</s>\":2,\"a\":3,\"\xc4\xa0\":4,\"b\":5,\"\xc4\xa0\x62\":6},\"merges\":[\"\xc4\xa0 b\"]},"    \
    "\"post_processor\":{\"type\":\"RobertaProcessing\",\"sep\":[\"</s>\",2],\"cls\":[\"<s>\",0]," \
    "\"trim_offsets\":" trim ",\"add_prefix_space\":false}}"
    ember_tokenizer *t = load_str(ROBERTA("true"));
    expect("Roberta trim", t, "a b", "<s>|a|\xc4\xa0\x62|</s>", "0,0 0,1 2,3 0,0", 1);
    expect("Roberta no specials", t, "a b", "a|\xc4\xa0\x62", "0,1 2,3", 0);
    ember_tokenizer_free(t);
    t = load_str(ROBERTA("false"));
    expect("Roberta no trim", t, "a b", "<s>|a|\xc4\xa0\x62|</s>", "0,0 0,1 1,3 0,0", 1);
    ember_tokenizer_free(t);
    /* ByteLevel post-processor alone trims too (processors ByteLevel) */
    t = load_str(
        "{\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true},\"model\":{\"type\":"
        "\"BPE\",\"vocab\":{\"a\":3,\"\xc4\xa0\":4,\"b\":5,\"\xc4\xa0\x62\":6,\"\xc4\xa0\x61\":7},"
        "\"merges\":[\"\xc4\xa0 b\",\"\xc4\xa0 a\"]},\"post_processor\":{\"type\":\"ByteLevel\","
        "\"trim_offsets\":true,\"add_prefix_space\":true}}");
    /* add_prefix_space: "a" becomes " a" whose space has a's span; the first
     * token keeps its single added space (is_first && add_prefix_space). */
    expect("ByteLevel prefix + trim", t, "a b", "\xc4\xa0\x61|\xc4\xa0\x62", "0,1 2,3", 1);
    ember_tokenizer_free(t);
    /* BertProcessing (processors/bert.rs) */
    t = load_str("{" WP_VOCAB(",\"x\":1") ",\"post_processor\":{\"type\":\"BertProcessing\","
                                          "\"sep\":[\"[SEP]\",102],\"cls\":[\"[CLS]\",101]}}");
    expect("BertProcessing", t, "x", "[CLS]|x|[SEP]", "0,0 0,1 0,0", 1);
    ember_tokenizer_free(t);
    /* Sequence of post-processors: ByteLevel trim then a template */
    t = load_str(
        "{\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false},\"model\":{\"type\":"
        "\"BPE\",\"vocab\":{\"<s>\":0,\"a\":3,\"\xc4\xa0\":4,\"b\":5,\"\xc4\xa0\x62\":6},\"merges\":"
        "[\"\xc4\xa0 b\"]},\"post_processor\":{\"type\":\"Sequence\",\"processors\":[{\"type\":"
        "\"ByteLevel\",\"trim_offsets\":true,\"add_prefix_space\":false},{\"type\":"
        "\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},"
        "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"pair\":[],\"special_tokens\":{\"<s>\":"
        "{\"id\":\"<s>\",\"ids\":[0],\"tokens\":[\"<s>\"]}}}]}}");
    expect("post Sequence", t, "a b", "<s>|a|\xc4\xa0\x62", "0,0 0,1 2,3", 1);
    ember_tokenizer_free(t);
}

static void bpe_models(void) {
    /* merges as ["a","b"] pairs (models/bpe/serialization.rs) */
    ember_tokenizer *t = load_str(
        "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2,\"c\":3,\"abc\":4},"
        "\"merges\":[[\"a\",\"b\"],[\"ab\",\"c\"]]}}");
    expect("BPE pair merges", t, "abcab", "abc|ab", "0,3 3,5", 0);
    ember_tokenizer_free(t);
    /* byte_fallback (models/bpe/model.rs test_bpe_byte_fallback) */
    t = load_str(
        "{\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"byte_fallback\":true,\"vocab\":"
        "{\"<unk>\":0,\"<0x61>\":1,\"<0xC3>\":2,\"<0xA9>\":3},\"merges\":[]}}");
    expect("byte_fallback unk", t, "c", "<unk>", "0,1", 0);
    expect("byte_fallback a", t, "a", "<0x61>", "0,1", 0);
    expect("byte_fallback e-acute", t, "\xc3\xa9", "<0xC3>|<0xA9>", "0,2 0,2", 0);
    ember_tokenizer_free(t);
    /* continuing_subword_prefix (test_bpe_with_continuing_subword_prefix) */
    t = load_str(
        "{\"model\":{\"type\":\"BPE\",\"unk_token\":\"[UNK]\",\"continuing_subword_prefix\":\"##\","
        "\"vocab\":{\"a\":0,\"##b\":1,\"##c\":2,\"ab\":3,\"abc\":4,\"[UNK]\":5},\"merges\":"
        "[[\"a\",\"##b\"],[\"ab\",\"##c\"]]}}");
    expect("prefix ab", t, "ab", "ab", "0,2", 0);
    expect("prefix abc", t, "abc", "abc", "0,3", 0);
    expect("prefix unk", t, "abd", "ab|[UNK]", "0,2 2,3", 0);
    ember_tokenizer_free(t);
    /* end_of_word_suffix: the last char is looked up with the suffix */
    t = load_str("{\"model\":{\"type\":\"BPE\",\"end_of_word_suffix\":\"</w>\",\"vocab\":{\"a\":0,"
                 "\"b</w>\":1,\"ab</w>\":2,\"b\":3},\"merges\":[\"a b</w>\"]}}");
    expect("end_of_word_suffix", t, "ab", "ab</w>", "0,2", 0);
    expect("end_of_word_suffix 2", t, "abab", "a|b|ab</w>", "0,1 1,2 2,4", 0);
    ember_tokenizer_free(t);
    /* fuse_unk (test_unk_get_fused / test_unk_not_fused) */
    t = load_str("{\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"fuse_unk\":true,\"vocab\":"
                 "{\"<unk>\":0,\"a\":1,\"b\":2},\"merges\":[]}}");
    expect("fuse_unk", t, "accb", "a|<unk>|b", "0,1 1,3 3,4", 0);
    ember_tokenizer_free(t);
    t = load_str("{\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"vocab\":"
                 "{\"<unk>\":0,\"a\":1,\"b\":2},\"merges\":[]}}");
    expect("no fuse_unk", t, "accb", "a|<unk>|<unk>|b", "0,1 1,2 2,3 3,4", 0);
    ember_tokenizer_free(t);
    /* ignore_merges: a word in the vocab is taken whole */
    t = load_str("{\"model\":{\"type\":\"BPE\",\"ignore_merges\":true,\"vocab\":{\"a\":0,\"b\":1,"
                 "\"c\":2,\"abc\":3,\"ab\":4},\"merges\":[\"a b\"]}}");
    expect("ignore_merges", t, "abc", "abc", "0,3", 0);
    ember_tokenizer_free(t);
    t = load_str("{\"model\":{\"type\":\"BPE\",\"ignore_merges\":false,\"vocab\":{\"a\":0,\"b\":1,"
                 "\"c\":2,\"abc\":3,\"ab\":4},\"merges\":[\"a b\"]}}");
    expect("no ignore_merges", t, "abc", "ab|c", "0,2 2,3", 0);
    ember_tokenizer_free(t);
}

static void added_tokens(void) {
    /* added_vocabulary.rs find_matches: single_word, lstrip, rstrip */
    const char *js =
        "{\"added_tokens\":[{\"id\":1,\"content\":\"<x>\",\"single_word\":true,\"lstrip\":false,"
        "\"rstrip\":false,\"normalized\":false,\"special\":true},{\"id\":2,\"content\":\"<y>\","
        "\"single_word\":false,\"lstrip\":false,\"rstrip\":true,\"normalized\":false,\"special\":"
        "true},{\"id\":5,\"content\":\"ab\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"
        "\"normalized\":true,\"special\":false}],\"normalizer\":{\"type\":\"Lowercase\"},"
        "\"pre_tokenizer\":{\"type\":\"WhitespaceSplit\"}," WP_VOCAB(",\"a\":3,\"b\":4,\"##b\":6,"
                                                                     "\"<\":7,\"##x\":8,\"##>\":9") "}";
    ember_tokenizer *t = load_str(js);
    expect("single_word inside a word", t, "a<x>b", "[UNK]", NULL, 0);
    expect("single_word alone", t, "a <x> b", "a|<x>|b", "0,1 2,5 6,7", 0);
    expect("rstrip", t, "<y>  a", "<y>  |a", "0,5 5,6", 0);
    /* normalized added token: matched after lowercasing */
    expect("normalized added", t, "AB", "ab", "0,2", 0);
    ember_tokenizer_free(t);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ember_tok_units_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    split_behaviors();
    pretokenizers();
    normalizers();
    processors();
    bpe_models();
    added_tokens();
    char path[128];
    snprintf(path, sizeof path, "%s/tokenizer.json", tmpdir);
    unlink(path);
    rmdir(tmpdir);
    return tt_finish("test_tok_units");
}

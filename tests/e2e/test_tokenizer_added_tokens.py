"""Added tokens and normalizers of tokenizer.json against Hugging Face `tokenizers` as the oracle.

Each case trains a small BPE with `tokenizers` at test time, gives it a normalizer (Replace with
regexes, Lowercase, Strip, NFKC, Prepend) and added tokens with every flag (single_word,
normalized true/false, lstrip, rstrip, special), saves tokenizer.json and checks that
`sglc tokenize --input-file` gives exactly HF's ids for strings built to hit the edges: word
characters of many scripts next to a single_word token, Unicode spaces next to lstrip/rstrip
tokens, overlapping tokens, tokens that only match after normalizing. Binary: $SGLC_BIN."""
import json

import pytest

from conftest import run

tokenizers = pytest.importorskip("tokenizers")
from tokenizers import AddedToken, Regex, decoders, models, normalizers  # noqa: E402
from tokenizers import pre_tokenizers, trainers  # noqa: E402
from conftest import sglc_ids

TRAIN = [
    "the cat sat on the mat with a dog and a catalog of cats",
    "Hello world, hello World! 1234 5678 x y z",
    "Ünïcödé café naïve 日本語 猫 한국어 русский Ελληνικά",
    "def f(x):\n    return x * 2  # comment\n",
] * 4

WORDY = ["é", "猫", "①", "²", "Ⓐ", "\u0301", "\u200d", "\u200c", "‿", "_", "1", "٣", "Ⅻ", "ǅ",
         ".", "-", " ", "\u00a0", "\u3000", "\t", "\n", "🦙", "\u200b", "$"]

TEXTS = [
    "cat", "cat dog", "concat", "cats", "the cat sat", "catalog", "cat catalog cat", "catcat",
    "cat cat cat", "dogcat dog", "DOG Dog dog", "CAT Cat cAt", "(cat)", "cat.", "cat,dog;<sw>",
    "  [L]  x  [R]  y", "a\u3000[L]\u3000b", "[R]\u00a0\u200bz", "[R]\u2028\u2029q", "[LR]",
    "x [LR] y", "x[LR]y", "  [LR]  ", "<sw>", "a<sw>b", "a <sw> b", "<sw><sw>", " <sw> <sw> ",
    "Ab AB ab aB", "xAby", "\t\n cat \n\t", " ", "İstanbul cat", "ﬁcat ﬁ", "x  y   z",
    "[L][L] [R][R]  [L]", "[R] [L]", "[R]   [L]", "<Sp>", "<sp> <SP> x<Sp>y", "Hello  World",
    "hello   world\n\n  again", "abab", "xxa", "aXbXc", "1234 cat 5678", "日本語cat 猫 cat猫",
    "cat\U0001f999", "\U0001f999cat\U0001f999", "cat\r\ncat", "a\n\nb", "   ", "ｃａｔ ＣＡＴ",
]
for ch in WORDY:
    TEXTS += [ch + "cat", "cat" + ch, ch + "cat" + ch, ch + "dog", "dog" + ch, ch + "<sw>" + ch,
              "x" + ch + "[LR]" + ch + "y", ch + "[L]" + ch, ch + "[R]" + ch]


def training_texts():
    """Every character of the test strings is in the trained alphabet (and cased and
    decomposed forms too): unknown characters without an unk token are not what this tests."""
    chars = "".join(sorted(set("".join(TEXTS + TRAIN))))
    extra = chars.lower() + chars.upper() + "".join(
        __import__("unicodedata").normalize(f, chars) for f in ("NFD", "NFKC", "NFKD"))
    return TRAIN + [chars, extra, "[L] [R] [LR] <sw> <Sp> ab -_!#0"]


def base_tokenizer(pre, dec, normalizer):
    tok = tokenizers.Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre
    tok.decoder = dec
    if normalizer is not None:
        tok.normalizer = normalizer
    alphabet = pre_tokenizers.ByteLevel.alphabet() if isinstance(
        pre, pre_tokenizers.ByteLevel) else []
    trainer = trainers.BpeTrainer(vocab_size=400, initial_alphabet=alphabet, show_progress=False)
    tok.train_from_iterator(training_texts(), trainer)
    return tok


def add_tokens(tok):
    tok.add_tokens([
        AddedToken("cat", single_word=True),  # normalized (the default)
        AddedToken("catalog"),
        AddedToken("dog", single_word=True, normalized=False),
        AddedToken("[L]", lstrip=True, normalized=False),
        AddedToken("[R]", rstrip=True, normalized=False),
        AddedToken("[LR]", lstrip=True, rstrip=True, single_word=True),
        AddedToken("Ab", normalized=True),
        AddedToken("ﬁ", normalized=True),
    ])
    tok.add_special_tokens([
        AddedToken("<sw>", single_word=True, special=True, normalized=False),
        AddedToken("<Sp>", special=True, normalized=True),
    ])
    return tok


def bytelevel(normalizer):
    def make():
        return add_tokens(base_tokenizer(pre_tokenizers.ByteLevel(add_prefix_space=False),
                                         decoders.ByteLevel(), normalizer))
    return make


def metaspace(normalizer, scheme):
    def make():
        return add_tokens(base_tokenizer(
            pre_tokenizers.Metaspace(prepend_scheme=scheme, split=True),
            decoders.Metaspace(prepend_scheme=scheme), normalizer))
    return make


def spm_style():
    """Llama 2's shape: the normalizers put U+2581 in (so normalized tokens' patterns get it too),
    no pre-tokenizer."""
    norm = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok = tokenizers.Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.normalizer = norm
    trainer = trainers.BpeTrainer(vocab_size=400, show_progress=False)
    tok.train_from_iterator([t.replace(" ", "▁") for t in training_texts()] + ["▁"], trainer)
    tok.normalizer = norm
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.Fuse()])
    return add_tokens(tok)


CASES = {
    "bytelevel-plain": bytelevel(None),
    "bytelevel-regex-lowercase": bytelevel(normalizers.Sequence([
        normalizers.Replace(Regex(r"\s{2,}"), " "), normalizers.Lowercase()])),
    "bytelevel-strip-nfkc-regex": bytelevel(normalizers.Sequence([
        normalizers.Strip(left=True, right=True), normalizers.NFKC(),
        normalizers.Replace(Regex("(?<=a)|b"), "-"), normalizers.Replace(Regex("X+"), "_")])),
    "bytelevel-anchors": bytelevel(normalizers.Sequence([
        normalizers.Replace(Regex("^ +| +$"), ""), normalizers.Replace(Regex(r"\d+"), "0"),
        normalizers.Replace(Regex(".$"), "!")])),
    "bytelevel-rstrip-only": bytelevel(normalizers.Strip(left=False, right=True)),
    "metaspace-first-lowercase": metaspace(normalizers.Sequence([
        normalizers.Strip(left=True, right=False), normalizers.Lowercase()]), "first"),
    "metaspace-always-nfd": metaspace(normalizers.NFD(), "always"),
    "spm-style-prepend": spm_style,
}


@pytest.mark.parametrize("name", list(CASES))
def test_added_tokens_and_normalizers_match_hf(name, sglc_bin, tmp_path):
    tok = CASES[name]()
    tj = tmp_path / "tokenizer.json"
    tok.save(str(tj))
    hf = tokenizers.Tokenizer.from_file(str(tj))  # the oracle reads the same file back
    texts = [t for t in dict.fromkeys(TEXTS) if t]
    got = sglc_ids(sglc_bin, tj, texts, tmp_path)
    assert len(got) == len(texts)
    bad = [(t, hf.encode(t, add_special_tokens=False).ids, g) for t, g in zip(texts, got)
           if hf.encode(t, add_special_tokens=False).ids != g]
    assert not bad, f"{len(bad)}/{len(texts)} differ; first: {bad[0]!r}"


def test_single_word_decides(sglc_bin, tmp_path):
    """The single_word token is taken alone and refused inside a word: a check that the cases
    above really exercise both outcomes."""
    tok = CASES["bytelevel-plain"]()
    tj = tmp_path / "tokenizer.json"
    tok.save(str(tj))
    cat = tok.token_to_id("cat")
    alone, inside = sglc_ids(sglc_bin, tj, ["a cat b", "concat"], tmp_path)
    assert cat in alone and cat not in inside


def test_normalized_token_matches_after_lowercase(sglc_bin, tmp_path):
    tok = CASES["bytelevel-regex-lowercase"]()
    tj = tmp_path / "tokenizer.json"
    tok.save(str(tj))
    ab = tok.token_to_id("Ab")
    (got,) = sglc_ids(sglc_bin, tj, ["xABy"], tmp_path)
    assert ab in got


def test_bad_replace_regex_is_an_error(sglc_bin, tmp_path):
    tok = CASES["bytelevel-plain"]()
    d = json.loads(tok.to_str())
    d["normalizer"] = {"type": "Replace", "pattern": {"Regex": "(unclosed"}, "content": "x"}
    tj = tmp_path / "tokenizer.json"
    tj.write_text(json.dumps(d))
    p = run([sglc_bin, "tokenize", "--model-path", str(tj), "x"])
    assert p.returncode == 2
    assert "Replace" in p.stderr and "(unclosed" in p.stderr

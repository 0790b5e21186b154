"""Characters the BPE vocabulary lacks, and Split regexes with anchors, against Hugging Face
`tokenizers` as the oracle.

HF's BPE (model.rs merge_word) has three ways with a character that is not in the vocabulary:
with byte_fallback, one <0xXX> token per byte when all of them exist; else the unk token, runs
of them fused into one when fuse_unk; else, with no unk token, the character is dropped and its
neighbours merge across the gap. HF's Split runs Oniguruma (Ruby syntax), where ^ and $ match at
every \\n and . stops only at \\n. Each case builds a small tokenizer.json at test time and
checks that `sglc tokenize --input-file` gives HF's ids byte for byte. Binary: $SGLC_BIN."""
import json
import subprocess

import pytest

tokenizers = pytest.importorskip("tokenizers")
from tokenizers import Regex, decoders, models, pre_tokenizers, trainers  # noqa: E402
from conftest import sglc_ids

TRAIN = [
    "the cat sat on the mat with a dog and a catalog of cats",
    "Hello world, hello World! 1234 5678 x y z abc abcabc",
    "café naïve 日本語 한국어 русский Ελληνικά",
    "def f(x):\n    return x * 2  # comment\n",
] * 4

# Not in TRAIN: unknown to the trained vocabulary.
UNKNOWN = ["ⓐ", "ⓑ", "猫", "🦙", "\u0301", "Z", "é", "\u200b", "\x00", "ÿ", "\U0010fffd"]

UNK_TEXTS = [
    "ⓐcat", "catⓐ", "caⓐt", "cⓐaⓑt", "ⓐⓑcat", "catⓐⓑ", "ⓐ", "ⓐⓑ", "ⓐ ⓑ", " ⓐ ", "ⓐ cat ⓑ",
    "ca🦙🦙t", "the 猫 sat", "the猫猫猫sat", "Zcat Zat ZZ", "c\u0301at", "\u200bthe\u200b",
    "cafe\u0301", "café", "ÿÿÿ", "x\x00y", "abc\U0010fffdabc", "<unk>", "a<unk>b", "<unk>ⓐ",
    "ⓐ<unk>ⓐ", "catalog ⓐcatalog catalogⓐ", "ⓐcⓐaⓐtⓐ", "the mat ⓐ\n\tⓐ dog", "hello  ⓐ  world",
    "日本ⓐ語", "русⓐский", "a ⓐ b ⓑ c 猫 d 🦙 e",
]
# Long words go through the heap path of bpe.c (more than 64 symbols).
UNK_TEXTS += [
    "catⓐ" * 30, "ⓐ" * 80, "the" + "ⓐ猫" * 40 + "cat", ("cat" * 30).replace("a", "ⓐ", 7),
    "abcabc" * 15 + "🦙" + "abc" * 10, "ⓐ🦙ZéⓑⓐⓐⓐZZ" * 8,
]
for ch in UNKNOWN:
    UNK_TEXTS += [ch + "cat", "cat" + ch, "c" + ch + "at", ch + ch + "the" + ch, ch * 3]


def check_parity(sglc_bin, tok_json, texts, tmp_path):
    tj = tmp_path / "tokenizer.json"
    tj.write_text(tok_json, encoding="utf-8")
    hf = tokenizers.Tokenizer.from_file(str(tj))  # the oracle reads the same file back
    texts = [t for t in dict.fromkeys(texts) if t]
    got = sglc_ids(sglc_bin, tj, texts, tmp_path)
    assert len(got) == len(texts)
    want = [hf.encode(t, add_special_tokens=False).ids for t in texts]
    bad = [(t, w, g) for t, w, g in zip(texts, want, got) if w != g]
    assert not bad, f"{len(bad)}/{len(texts)} differ; first: {bad[0]!r}"
    return hf


def metaspace_base(pre=True):
    """A Metaspace BPE (or, pre=False, Llama 2's shape: no pre-tokenizer, spaces made U+2581
    by the normalizers, so a whole text is one word), trained with <unk> in its vocabulary."""
    from tokenizers import normalizers
    tok = tokenizers.Tokenizer(models.BPE(unk_token=None))
    if pre:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="always", split=True)
        tok.decoder = decoders.Metaspace(prepend_scheme="always")
        train = TRAIN
    else:
        train = ["▁" + t.replace(" ", "▁") for t in TRAIN]
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>"], show_progress=False)
    tok.train_from_iterator(train, trainer)
    if not pre:
        tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"),
                                               normalizers.Replace(" ", "▁")])
        tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                         decoders.Fuse()])
    return json.loads(tok.to_str())


def with_model(d, unk=None, fuse=False, byte_fallback=False, byte_set=None, unk_merge=False):
    """Sets the model's unknown-character handling; byte_set adds <0xXX> tokens for those bytes
    (all 256 when True); unk_merge adds the token <unk>c and the merge "<unk> c"."""
    d = json.loads(json.dumps(d))
    m = d["model"]
    m["unk_token"], m["fuse_unk"], m["byte_fallback"] = unk, fuse, byte_fallback
    vocab = m["vocab"]
    if byte_set is not None:
        for b in (range(256) if byte_set is True else byte_set):
            vocab.setdefault(f"<0x{b:02X}>", len(vocab))
    if unk_merge:
        vocab["<unk>c"] = len(vocab)
        m["merges"].insert(0, ["<unk>", "c"])
    return json.dumps(d, ensure_ascii=False)


def bytes_of(chars):
    return sorted({b for c in chars for b in c.encode()})


# Some bytes of the unknown characters have tokens, some not: byte fallback fails for those
# characters and they go to unk (or vanish), in HF's order.
PARTIAL = bytes_of("ⓐ🦙Z\x00") + [0x8C]

MODEL_CASES = {
    "drop": dict(),
    "unk": dict(unk="<unk>"),
    "unk-fuse": dict(unk="<unk>", fuse=True),
    "unk-merges": dict(unk="<unk>", unk_merge=True),
    "unk-fuse-merges": dict(unk="<unk>", fuse=True, unk_merge=True),
    "bytes": dict(byte_fallback=True, byte_set=True),
    "bytes-unk-fuse": dict(unk="<unk>", fuse=True, byte_fallback=True, byte_set=True),
    "bytes-partial-drop": dict(byte_fallback=True, byte_set=PARTIAL),
    "bytes-partial-unk": dict(unk="<unk>", byte_fallback=True, byte_set=PARTIAL),
    "bytes-partial-unk-fuse": dict(unk="<unk>", fuse=True, byte_fallback=True, byte_set=PARTIAL),
    "bytes-flag-without-bytes": dict(unk="<unk>", byte_fallback=True),
}


@pytest.fixture(scope="module")
def bases():
    return {"metaspace": metaspace_base(True), "spm": metaspace_base(False)}


@pytest.mark.parametrize("base", ["metaspace", "spm"])
@pytest.mark.parametrize("case", list(MODEL_CASES))
def test_unknown_characters_match_hf(case, base, bases, sglc_bin, tmp_path):
    check_parity(sglc_bin, with_model(bases[base], **MODEL_CASES[case]), UNK_TEXTS, tmp_path)


def test_cases_reach_each_outcome(bases, sglc_bin, tmp_path):
    """The oracle really drops, emits unk, fuses and falls back to bytes in the cases above, and
    sglc agrees: a check that the parity runs test what they claim."""
    d = bases["metaspace"]
    unk = d["model"]["vocab"]["<unk>"]
    out = {}
    for case in ("drop", "unk", "unk-fuse", "bytes"):
        hf = check_parity(sglc_bin, with_model(d, **MODEL_CASES[case]), ["ⓐcat", "ⓐⓑcat"],
                          tmp_path)
        out[case] = [hf.encode(t, add_special_tokens=False).ids for t in ("ⓐcat", "ⓐⓑcat")]
        cat = hf.encode("cat", add_special_tokens=False).ids
    assert out["drop"] == [cat, cat] and len(cat) == 1  # '▁cat', merged across the gap
    assert out["unk"][1].count(unk) == 2 and out["unk-fuse"][1].count(unk) == 1
    assert unk not in out["bytes"][0] and len(out["bytes"][0]) >= 4  # ▁ + 3 bytes + cat


def bytelevel_missing(missing):
    """A byte-level BPE whose vocabulary lacks the byte characters of `missing` (and every token
    and merge built from them): those bytes are unknown."""
    tok = tokenizers.Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TRAIN + UNK_TEXTS, trainer)
    d = json.loads(tok.to_str())
    bl = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    gone = {bl.pre_tokenize_str(bytes([b]).decode("latin-1"))[0][0]
            for b in bytes_of(missing) if b < 0x80}
    gone |= {c for c in "".join(w for w, _ in bl.pre_tokenize_str(missing))}
    m = d["model"]
    m["vocab"] = {k: v for k, v in m["vocab"].items() if not set(k) & gone}
    m["merges"] = [p for p in m["merges"] if not set(p[0] + p[1]) & gone]
    return d


@pytest.mark.parametrize("case", ["drop", "unk", "unk-fuse"])
def test_bytelevel_missing_bytes_match_hf(case, sglc_bin, tmp_path):
    d = bytelevel_missing("ⓐ猫Z")
    d["model"]["vocab"].setdefault("<unk>", max(d["model"]["vocab"].values()) + 1)
    check_parity(sglc_bin, with_model(d, **MODEL_CASES[case]), UNK_TEXTS, tmp_path)


# ---- Split regexes: ^ $ . \Z \z at newlines ----

SPLIT_TEXTS = [
    "a\nb a", "a\na ba", "a\r\nb a", "a\rb a", "a\u2028b a", "a\x85b a", "ab\n", "ab\n\n",
    "\nab", "\n\nab\n\n", "a\na\n", "a\na", "x\u2028x\rx\x85x", "ab\ncd\r\nef\u2028gh",
    "  a  \n  b  \n", "\n", "\n\n\n", "a", "line one\nline two\n\nline three", "a$b^c.d",
    "\t\n \n", "aaa\naaa\naaa", "a\n\na", "é\n日本\n🦙", "xa\nax", "a b\nb a\n",
]

SPLIT_PATTERNS = [
    "a$", "^a", "$", "^", ".", ".+", r"\Z", r"a\Z", r"\z", r"a\z", r"\A.", r"\s+$", r"^\s+",
    "^$", "^.*$", r".\n", "(?i:A)$", r"[^\n]+", r"b\b", "$|a", r"^\n", r"\n^",
]


@pytest.fixture(scope="module")
def split_base():
    """Byte-level BPE trained on the split texts as whole words (no regex), so that its merges
    run across newlines and every boundary the Split makes shows in the ids."""
    tok = tokenizers.Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(SPLIT_TEXTS * 3 + TRAIN, trainer)
    return tok


@pytest.mark.parametrize("behavior", ["isolated", "removed", "merged_with_previous",
                                      "merged_with_next", "contiguous"])
@pytest.mark.parametrize("invert", [False, True])
def test_split_anchors_match_hf(behavior, invert, split_base, sglc_bin, tmp_path):
    bad = []
    for pat in SPLIT_PATTERNS:
        split_base.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pat), behavior, invert=invert),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        try:
            check_parity(sglc_bin, split_base.to_str(), SPLIT_TEXTS, tmp_path)
        except AssertionError as e:
            bad.append(f"{pat!r}: {e}")
    assert not bad, "\n".join(bad)


def test_split_dollar_is_per_line(split_base, sglc_bin, tmp_path):
    """The case the issue names: Split("a$") on "a\\nb a" cuts off the first a too."""
    split_base.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex("a$"), "isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    hf = check_parity(sglc_bin, split_base.to_str(), ["a\nb a"], tmp_path)
    words = [w for w, _ in hf.pre_tokenizer.pre_tokenize_str("a\nb a")]
    assert len(words) == 3


def test_split_bad_regex_names_the_file_pattern(split_base, sglc_bin, tmp_path):
    d = json.loads(split_base.to_str())
    d["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": "(unclosed$"},
                          "behavior": "Isolated", "invert": False}
    tj = tmp_path / "tokenizer.json"
    tj.write_text(json.dumps(d))
    p = subprocess.run([sglc_bin, "tokenize", "--model-path", str(tj), "x"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 2
    assert "'(unclosed$'" in p.stderr and "(?m)" not in p.stderr

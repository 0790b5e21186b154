/* Tests of formats/hf_folder and formats/model_path on folders built in a temp dir: a single
 * model.safetensors, sharded weights with an index (and what goes wrong with one), .gguf
 * folders, and a fake Hugging Face cache reached through HF_HUB_CACHE and HF_HOME. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "formats/hf_folder.h"
#include "formats/model_path.h"

static char tmpdir[64];

static int setup_dir(void **state) {
    (void)state;
    strcpy(tmpdir, "/tmp/sglc_test_mp_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* tmpdir/rel, with its parent folders made. */
static const char *make_path(const char *rel) {
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, rel);
    for (char *s = p + strlen(tmpdir) + 1; (s = strchr(s, '/')); s++) {
        *s = 0;
        mkdir(p, 0755);
        *s = '/';
    }
    return p;
}

static void write_text(const char *rel, const char *text) {
    FILE *f = fopen(make_path(rel), "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A safetensors file whose tensors are F32 vectors of 2 elements, named by names[]. */
static void write_st(const char *rel, const char **names, int n) {
    char json[1024] = "{";
    for (int i = 0; i < n; i++) {
        size_t k = strlen(json);
        snprintf(json + k, sizeof json - k,
                 "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[%d,%d]}",
                 i ? "," : "", names[i], 8 * i, 8 * i + 8);
    }
    strcat(json, "}");
    size_t hl = strlen(json), padded = (hl + 7) / 8 * 8;
    FILE *f = fopen(make_path(rel), "wb");
    assert_non_null(f);
    uint64_t len = padded;
    fwrite(&len, 8, 1, f);
    fwrite(json, 1, hl, f);
    for (size_t i = hl; i < padded; i++) fputc(' ', f);
    for (int i = 0; i < 8 * n; i++) fputc(i, f);
    fclose(f);
}

static void write_gguf(const char *rel) {
    FILE *f = fopen(make_path(rel), "wb");
    assert_non_null(f);
    uint32_t v = 3;
    uint64_t z = 0;
    fwrite("GGUF", 1, 4, f), fwrite(&v, 4, 1, f), fwrite(&z, 8, 1, f), fwrite(&z, 8, 1, f);
    fclose(f);
}

static char *folder(const char *rel) {
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, rel);
    return p;
}

static hf_folder *open_ok(const char *rel) {
    char err[1024] = "";
    hf_folder *f = hf_folder_open(folder(rel), err, sizeof err);
    if (!f) fail_msg("%s", err);
    return f;
}

static void expect_open_error(const char *rel, const char *want) {
    char err[1024] = "";
    hf_folder *f = hf_folder_open(folder(rel), err, sizeof err);
    if (f || !strstr(err, want))
        fail_msg("want error containing \"%s\", got %s\"%s\"", want, f ? "success " : "", err);
}

static void test_hf_single(void **state) {
    (void)state;
    const char *names[] = {"model.embed_tokens.weight", "lm_head.weight"};
    write_text("single/config.json", "{\"model_type\":\"llama\",\"hidden_size\":64}");
    write_st("single/model.safetensors", names, 2);
    hf_folder *f = open_ok("single/");
    assert_string_equal(hf_folder_path(f), folder("single"));
    assert_string_equal(json_string_value(json_object_get(hf_folder_config(f), "model_type")),
                        "llama");
    assert_null(hf_folder_generation_config(f));
    assert_int_equal(hf_folder_n_shards(f), 1);
    assert_int_equal(hf_folder_n_tensors(f), 2);
    const safetensors_tensor *t = hf_folder_find(f, "lm_head.weight");
    assert_non_null(t);
    assert_int_equal(t->view.ne[0], 2);
    assert_null(hf_folder_find(f, "nope"));
    assert_non_null(hf_folder_tensor_at(f, 1));
    assert_null(hf_folder_tensor_at(f, 2));
    hf_folder_close(f);

    write_text("single/generation_config.json", "{\"temperature\":0.6}");
    f = open_ok("single");
    assert_true(json_real_value(json_object_get(hf_folder_generation_config(f), "temperature")) ==
                0.6);
    hf_folder_close(f);
    write_text("single/generation_config.json", "{\"temperature\":");
    expect_open_error("single", "generation_config.json: ");
}

static void test_hf_sharded(void **state) {
    (void)state;
    const char *s1[] = {"a", "b"}, *s2[] = {"c"};
    write_text("sharded/config.json", "{}");
    write_st("sharded/model-00002-of-00002.safetensors", s2, 1);
    write_st("sharded/model-00001-of-00002.safetensors", s1, 2);
    write_text("sharded/model.safetensors.index.json",
               "{\"metadata\":{\"total_size\":24},\"weight_map\":{"
               "\"c\":\"model-00002-of-00002.safetensors\","
               "\"a\":\"model-00001-of-00002.safetensors\","
               "\"b\":\"model-00001-of-00002.safetensors\"}}");
    hf_folder *f = open_ok("sharded");
    assert_int_equal(hf_folder_n_shards(f), 2);
    assert_non_null(strstr(safetensors_path(hf_folder_shard(f, 0)), "00001-of"));
    assert_int_equal(hf_folder_n_tensors(f), 3);
    assert_string_equal(hf_folder_tensor_at(f, 0)->name, "a");
    assert_string_equal(hf_folder_tensor_at(f, 2)->name, "c");
    assert_non_null(hf_folder_find(f, "c"));
    assert_ptr_equal(hf_folder_find(f, "c"), safetensors_find(hf_folder_shard(f, 1), "c"));
    hf_folder_close(f);

    /* a shard listed in weight_map is missing */
    write_text("sharded/model.safetensors.index.json",
               "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
               "\"z\":\"model-00003-of-00003.safetensors\"}}");
    expect_open_error("sharded", "shard 'model-00003-of-00003.safetensors' listed in weight_map "
                                 "is missing");
    /* a tensor listed but absent from its shard */
    write_text("sharded/model.safetensors.index.json",
               "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
               "\"zz\":\"model-00002-of-00002.safetensors\"}}");
    expect_open_error("sharded", "tensor 'zz' listed in weight_map is not in shard "
                                 "'model-00002-of-00002.safetensors'");
    write_text("sharded/model.safetensors.index.json",
               "{\"weight_map\":{\"a\":\"../model-00001-of-00002.safetensors\"}}");
    expect_open_error("sharded", "tensor 'a': shard is not a file name");
    write_text("sharded/model.safetensors.index.json", "{\"weight_map\":{}}");
    expect_open_error("sharded", "weight_map is missing, empty");
    write_text("sharded/model.safetensors.index.json", "{\"weight_map\":");
    expect_open_error("sharded", "model.safetensors.index.json: ");
    /* the same tensor in two shards */
    write_st("sharded/model-00002-of-00002.safetensors", s1, 1);
    write_text("sharded/model.safetensors.index.json",
               "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
               "\"b\":\"model-00002-of-00002.safetensors\"}}");
    expect_open_error("sharded", "tensor 'b' listed in weight_map is not in shard");
    write_text("sharded/model.safetensors.index.json",
               "{\"weight_map\":{\"a\":\"model-00002-of-00002.safetensors\","
               "\"b\":\"model-00001-of-00002.safetensors\"}}");
    expect_open_error("sharded", "tensor 'a' is in two shards: ");
}

static void test_hf_errors(void **state) {
    (void)state;
    mkdir(make_path("empty/x"), 0755);
    expect_open_error("empty", "empty/config.json: missing");
    write_text("noweights/config.json", "{}");
    expect_open_error("noweights", "no model.safetensors or model.safetensors.index.json");
    write_text("badcfg/config.json", "{\"a\":1,}");
    expect_open_error("badcfg", "badcfg/config.json: ");
    write_text("arrcfg/config.json", "[]");
    expect_open_error("arrcfg", "not a JSON object");
    write_text("badst/config.json", "{}");
    write_text("badst/model.safetensors", "xx");
    expect_open_error("badst", "badst/model.safetensors: truncated");
}

/* ---- model_path ---- */

static void expect_resolve(const char *arg, model_src_kind kind, const char *want_out) {
    char out[512], err[2048] = "";
    model_src_kind k = model_path_resolve(arg, out, sizeof out, err, sizeof err);
    if (k != kind) fail_msg("%s: kind %d, want %d (%s)", arg, k, kind, err);
    assert_string_equal(out, want_out);
}

static void expect_resolve_error(const char *arg, const char *want) {
    char out[512], err[2048] = "";
    model_src_kind k = model_path_resolve(arg, out, sizeof out, err, sizeof err);
    if (k != MODEL_SRC_NONE || !strstr(err, want))
        fail_msg("%s: want error containing \"%s\", got kind %d \"%s\"", arg, want, k, err);
}

static void test_resolve_local(void **state) {
    (void)state;
    char p[512], want[512];
    write_gguf("local/m.gguf");
    snprintf(p, sizeof p, "%s/local/m.gguf", tmpdir);
    expect_resolve(p, MODEL_SRC_GGUF, p);
    /* a folder with one .gguf: that file */
    snprintf(p, sizeof p, "%s/local", tmpdir);
    snprintf(want, sizeof want, "%s/local/m.gguf", tmpdir);
    expect_resolve(p, MODEL_SRC_GGUF, want);
    /* a GGUF file without the extension is recognised by its magic */
    write_gguf("local/model.bin");
    snprintf(p, sizeof p, "%s/local/model.bin", tmpdir);
    expect_resolve(p, MODEL_SRC_GGUF, p);
    write_text("local/notes.txt", "hello");
    snprintf(p, sizeof p, "%s/local/notes.txt", tmpdir);
    expect_resolve_error(p, "not a GGUF file");
    write_gguf("local/m2.gguf");
    snprintf(p, sizeof p, "%s/local", tmpdir);
    expect_resolve_error(p, "holds 2 .gguf files");
    /* an HF folder */
    const char *names[] = {"w"};
    write_text("hfdir/config.json", "{}");
    write_st("hfdir/model.safetensors", names, 1);
    snprintf(p, sizeof p, "%s/hfdir", tmpdir);
    expect_resolve(p, MODEL_SRC_HF_FOLDER, p);
    mkdir(make_path("nothing/x"), 0755);
    snprintf(p, sizeof p, "%s/nothing", tmpdir);
    expect_resolve_error(p, "no config.json (Hugging Face folder) and no .gguf file");
    expect_resolve_error("", "empty model path");
    expect_resolve_error("/no/such/file.gguf", "no such file or folder");
}

static void test_resolve_hf_cache(void **state) {
    (void)state;
    char hub[256], want[512];
    snprintf(hub, sizeof hub, "%s/hub", tmpdir);
    setenv("HF_HUB_CACHE", hub, 1);
    unsetenv("HF_HOME");

    /* refs/main names the snapshot */
    const char *names[] = {"w"};
    write_text("hub/models--Org--Model/refs/main", "abc123\n");
    write_text("hub/models--Org--Model/snapshots/abc123/config.json", "{}");
    write_st("hub/models--Org--Model/snapshots/abc123/model.safetensors", names, 1);
    write_text("hub/models--Org--Model/snapshots/zzz999/config.json", "{}");
    snprintf(want, sizeof want, "%s/models--Org--Model/snapshots/abc123", hub);
    expect_resolve("Org/Model", MODEL_SRC_HF_FOLDER, want);

    /* no refs/main: the newest snapshot */
    write_gguf("hub/models--Org--Gguf/snapshots/old/a.gguf");
    write_gguf("hub/models--Org--Gguf/snapshots/new/b.gguf");
    struct timeval tv[2] = {{1000000000, 0}, {1000000000, 0}};
    assert_int_equal(utimes(make_path("hub/models--Org--Gguf/snapshots/old"), tv), 0);
    snprintf(want, sizeof want, "%s/models--Org--Gguf/snapshots/new/b.gguf", hub);
    expect_resolve("Org/Gguf", MODEL_SRC_GGUF, want);

    /* refs/main pointing nowhere falls back to the only snapshot */
    write_text("hub/models--Org--Stale/refs/main", "deadbeef");
    write_gguf("hub/models--Org--Stale/snapshots/cafe/m.gguf");
    snprintf(want, sizeof want, "%s/models--Org--Stale/snapshots/cafe/m.gguf", hub);
    expect_resolve("Org/Stale", MODEL_SRC_GGUF, want);

    /* not found: every place is named */
    char looked[600];
    snprintf(looked, sizeof looked,
             "%s/models--Org--Missing (missing; cache root from "
             "$HF_HUB_CACHE)",
             hub);
    expect_resolve_error("Org/Missing", looked);
    expect_resolve_error("Org/Missing", "Org/Missing (no such local file or folder)");
    mkdir(make_path("hub/models--Org--Empty/snapshots/x"), 0755);
    rmdir(make_path("hub/models--Org--Empty/snapshots/x"));
    expect_resolve_error("Org/Empty", "refs/main (missing)");
    expect_resolve_error("Org/Empty", "snapshots (no snapshot)");
    expect_resolve_error("a/b/c", "not a repo id");
    expect_resolve_error("Org/..", "not a repo id");

    /* HF_HOME/hub when HF_HUB_CACHE is unset */
    unsetenv("HF_HUB_CACHE");
    char home[256];
    snprintf(home, sizeof home, "%s/hfhome", tmpdir);
    setenv("HF_HOME", home, 1);
    write_gguf("hfhome/hub/models--Org--Home/snapshots/s1/m.gguf");
    snprintf(want, sizeof want, "%s/hub/models--Org--Home/snapshots/s1/m.gguf", home);
    expect_resolve("Org/Home", MODEL_SRC_GGUF, want);
    expect_resolve_error("Org/Model", "$HF_HOME/hub");
    unsetenv("HF_HOME");

    char out[8], err[256];
    setenv("HF_HUB_CACHE", hub, 1);
    assert_int_equal(model_path_resolve("Org/Model", out, sizeof out, err, sizeof err),
                     MODEL_SRC_NONE);
    assert_non_null(strstr(err, "path longer than 8 bytes"));
    unsetenv("HF_HUB_CACHE");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hf_single),        cmocka_unit_test(test_hf_sharded),
        cmocka_unit_test(test_hf_errors),        cmocka_unit_test(test_resolve_local),
        cmocka_unit_test(test_resolve_hf_cache),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}

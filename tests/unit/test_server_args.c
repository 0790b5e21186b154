/* Unit tests for config/server_args: the seed deployment's commands parse and are then refused
 * naming each flag this CPU build cannot honour; the same commands with supported values are
 * accepted; SGLang's defaults and derived settings; usage errors (unknown flags, wrong types,
 * bad choices) are exit status 2; the JSON dump has every field. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config/server_args.h"

static char err[4096];

/* Splits a command line on spaces into argv (argv[0] = "launch_server"). */
static int run(const char *line, server_args *a) {
    static char buf[4096];
    static char *argv[256];
    snprintf(buf, sizeof buf, "launch_server %s", line);
    int argc = 0;
    for (char *t = strtok(buf, " "); t && argc < 255; t = strtok(NULL, " "))
        argv[argc++] = t;
    argv[argc] = NULL;
    return server_args_parse(argc, argv, a, err, sizeof err);
}

static void expect_refused(const char *err_text, const char *flag) {
    if (!strstr(err_text, flag)) fail_msg("refusal does not name %s:\n%s", flag, err_text);
}

static const char SEED1[] = "--model-path meta-llama/Llama-3.1-8B-Instruct --attention-backend "
                            "ascend --host 0.0.0.0 --port 30000";
static const char SEED2[] =
    "--model-path DeepSeek-R1-bf16-hfd-w8a8 --trust-remote-code --attention-backend ascend "
    "--mem-fraction-static 0.8 --quantization w8a8_int8 --tp-size 16 --dp-size 1 --nnodes 1 "
    "--node-rank 0 --disaggregation-mode prefill --disaggregation-bootstrap-port 6657 "
    "--disaggregation-transfer-backend ascend --dist-init-addr HOST:6688 --host HOST --port 8000";
static const char SEED3[] =
    "--model-path DeepSeek-R1-bf16-hfd-w8a8 --trust-remote-code --attention-backend ascend "
    "--mem-fraction-static 0.8 --quantization w8a8_int8 --tp-size 16 --dp-size 1 --nnodes 1 "
    "--node-rank 0 --disaggregation-transfer-backend ascend --dist-init-addr HOST:6688 "
    "--host HOST --enable-deepep-moe --deepep-mode low_latency --ep-size 16 "
    "--disaggregation-mode decode --port 8001";

static void test_seed_commands_refused(void **state) {
    (void)state;
    server_args a;
    assert_int_equal(run(SEED1, &a), 2);
    expect_refused(err, "--attention-backend ascend: this build has attention backends: "
                        "torch_native (cpu)");
    assert_null(strchr(err, '\n')); /* the only thing seed 1 asks that this build lacks */
    /* it was parsed in full before the refusal */
    assert_string_equal(a.host, "0.0.0.0");
    assert_int_equal(a.port, 30000);
    assert_int_equal(a.page_size, 128); /* ascend forces 128-token pages, as SGLang */

    assert_int_equal(run(SEED2, &a), 2);
    expect_refused(err, "--attention-backend ascend");
    expect_refused(err, "--tp-size 16");
    assert_null(strstr(err, "--quantization")); /* w8a8_int8 is honoured on the CPU */
    expect_refused(err, "--disaggregation-transfer-backend ascend");
    expect_refused(err, "--disaggregation-decode-tp 16"); /* prefill: decode TP defaults to 16 */
    assert_null(strstr(err, "--dp-size"));
    assert_null(strstr(err, "--nnodes"));
    assert_string_equal(a.disaggregation_mode, "prefill");
    assert_int_equal(a.disaggregation_bootstrap_port, 6657);
    assert_string_equal(a.dist_init_addr, "HOST:6688");
    assert_true(a.trust_remote_code);
    assert_true(fabs(a.mem_fraction_static - 0.8) < 1e-12);

    assert_int_equal(run(SEED3, &a), 2);
    expect_refused(err, "--enable-deepep-moe");
    expect_refused(err, "--moe-a2a-backend deepep");
    expect_refused(err, "--deepep-mode low_latency");
    expect_refused(err, "--ep-size 16");
    expect_refused(err, "--tp-size 16");
    assert_string_equal(a.disaggregation_mode, "decode");
    assert_true(a.disable_radix_cache); /* decode mode */
}

static void test_supported_equivalents_accepted(void **state) {
    (void)state;
    server_args a;
    assert_int_equal(run("--model-path m.gguf --attention-backend torch_native --host 0.0.0.0 "
                         "--port 30000 --device cpu",
                         &a),
                     0);
    assert_string_equal(a.attention_backend, "torch_native");
    assert_string_equal(a.device, "cpu");
    assert_int_equal(a.page_size, 1);

    /* seed 2 without what this build lacks: the prefill server of the one-machine example */
    assert_int_equal(run("--model-path m.gguf --trust-remote-code --mem-fraction-static 0.8 "
                         "--tp-size 1 --dp-size 1 --nnodes 1 --node-rank 0 "
                         "--disaggregation-mode prefill --disaggregation-bootstrap-port 6657 "
                         "--disaggregation-transfer-backend ucx --dist-init-addr 127.0.0.1:6688 "
                         "--host 127.0.0.1 --port 8000",
                         &a),
                     0);
    assert_int_equal(a.disaggregation_decode_tp, 1);
    assert_int_equal(a.disaggregation_decode_dp, 1);
    assert_false(a.disable_radix_cache);

    /* seed 3 likewise: the decode server */
    assert_int_equal(run("--model-path m.gguf --disaggregation-mode decode --port 8001 "
                         "--disaggregation-transfer-backend fake --num-reserved-decode-tokens 256",
                         &a),
                     0);
    assert_true(a.disable_radix_cache);
    assert_int_equal(a.num_reserved_decode_tokens, 256);

    assert_int_equal(run("--model-path m --quantization gguf --kv-cache-dtype bf16", &a), 0);
    assert_int_equal(run("--model-path m --kv-cache-dtype fp16", &a), 0);
    assert_int_equal(run("--model-path m --kv-cache-dtype fp32", &a), 0);
}

static void test_single_refusals(void **state) {
    (void)state;
    static const struct {
        const char *args, *named;
    } cases[] = {
        {"--device npu", "--device npu: this build has devices: cpu"},
        {"--device cuda", "--device cuda"},
        {"--tp-size 2", "--tp-size 2"},
        {"--tp 2", "--tp-size 2"},
        {"--nnodes 2 --node-rank 1", "--nnodes 2"},
        {"--quantization fp8", "--quantization fp8"},
        {"--kv-cache-dtype fp8_e5m2", "--kv-cache-dtype fp8_e5m2"},
        {"--kv-cache-dtype fp8_e4m3", "--kv-cache-dtype fp8_e4m3"},
        {"--disaggregation-transfer-backend mooncake",
         "--disaggregation-transfer-backend mooncake"},
        {"--disaggregation-transfer-backend nixl", "--disaggregation-transfer-backend nixl"},
        {"--enable-dp-attention", "--enable-dp-attention"},
        {"--speculative-algorithm EAGLE", "--speculative-algorithm EAGLE"},
        {"--schedule-policy priority", "--schedule-policy priority"},
        {"--attention-backend flashinfer", "torch_native (cpu)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char line[512];
        snprintf(line, sizeof line, "--model-path m %s", cases[i].args);
        server_args a;
        if (run(line, &a) != 2) fail_msg("'%s' was not refused", cases[i].args);
        expect_refused(err, cases[i].named);
    }
}

static void test_defaults_match_sglang(void **state) {
    (void)state;
    server_args a;
    assert_int_equal(run("--model-path org/model", &a), 0);
    assert_string_equal(a.model_path, "org/model");
    assert_string_equal(a.tokenizer_path, "org/model");
    assert_string_equal(a.served_model_name, "org/model");
    assert_string_equal(a.host, "127.0.0.1");
    assert_int_equal(a.port, 30000);
    assert_string_equal(a.dtype, "auto");
    assert_string_equal(a.kv_cache_dtype, "auto");
    assert_null(a.quantization);
    assert_null(a.device);
    assert_null(a.attention_backend);
    assert_null(a.api_key);
    assert_null(a.chat_template);
    assert_true(isnan(a.mem_fraction_static));
    assert_int_equal(a.context_length, SERVER_ARGS_UNSET);
    assert_int_equal(a.max_running_requests, SERVER_ARGS_UNSET);
    assert_int_equal(a.max_total_tokens, SERVER_ARGS_UNSET);
    assert_int_equal(a.chunked_prefill_size, SERVER_ARGS_UNSET);
    assert_int_equal(a.max_prefill_tokens, 16384);
    assert_string_equal(a.schedule_policy, "fcfs");
    assert_false(a.disable_radix_cache);
    assert_int_equal(a.page_size, 1);
    assert_string_equal(a.log_level, "info");
    assert_false(a.log_requests);
    assert_int_equal(a.stream_interval, 1);
    assert_false(a.enable_metrics);
    assert_int_equal(a.tp_size, 1);
    assert_int_equal(a.dp_size, 1);
    assert_int_equal(a.ep_size, 1);
    assert_int_equal(a.nnodes, 1);
    assert_int_equal(a.node_rank, 0);
    assert_null(a.dist_init_addr);
    assert_false(a.enable_deepep_moe);
    assert_string_equal(a.deepep_mode, "auto");
    assert_string_equal(a.disaggregation_mode, "null");
    assert_int_equal(a.disaggregation_bootstrap_port, 8998);
    assert_string_equal(a.disaggregation_transfer_backend, "ucx");
    assert_int_equal(a.disaggregation_decode_tp, SERVER_ARGS_UNSET); /* not prefill mode */
    assert_int_equal(a.num_reserved_decode_tokens, 512);
    assert_true(a.watchdog_timeout == 300);
    assert_int_equal(a.threads, 0);
    /* SGLang: random.randint(0, 2**30) */
    assert_true(a.random_seed >= 0 && a.random_seed <= (1L << 30));
    assert_int_equal(server_args_default_chunked_prefill(16), 2048);
    assert_int_equal(server_args_default_chunked_prefill(80), 8192);
    assert_int_equal(server_args_default_chunked_prefill(192), 16384);
}

static void test_syntax_forms(void **state) {
    (void)state;
    server_args a;
    assert_int_equal(run("--model_path=m --tokenizer-path=t --port=8080 --context_length 4096 "
                         "--served-model-name=name --api-key k --chat-template chatml "
                         "--log-level debug --log-requests --random-seed 7 --stream-interval 4 "
                         "--enable-metrics --max-running-requests 32 --max-queued-requests 100 "
                         "--max-total-tokens 65536 --chunked-prefill-size -1 "
                         "--max-prefill-tokens 4096 --schedule-policy lpm --disable-radix-cache "
                         "--page-size 16 --threads 2 --skip-tokenizer-init --dtype float32 "
                         "--watchdog-timeout 60",
                         &a),
                     0);
    assert_string_equal(a.model_path, "m");
    assert_string_equal(a.tokenizer_path, "t");
    assert_int_equal(a.port, 8080);
    assert_int_equal(a.context_length, 4096);
    assert_string_equal(a.served_model_name, "name");
    assert_string_equal(a.api_key, "k");
    assert_string_equal(a.chat_template, "chatml");
    assert_string_equal(a.log_level, "debug");
    assert_true(a.log_requests);
    assert_int_equal(a.random_seed, 7);
    assert_int_equal(a.stream_interval, 4);
    assert_true(a.enable_metrics);
    assert_int_equal(a.max_running_requests, 32);
    assert_int_equal(a.max_queued_requests, 100);
    assert_int_equal(a.max_total_tokens, 65536);
    assert_int_equal(a.chunked_prefill_size, -1);
    assert_int_equal(a.max_prefill_tokens, 4096);
    assert_string_equal(a.schedule_policy, "lpm");
    assert_true(a.disable_radix_cache);
    assert_int_equal(a.page_size, 16);
    assert_int_equal(a.threads, 2);
    assert_true(a.skip_tokenizer_init);
    assert_string_equal(a.dtype, "float32");
    assert_true(a.watchdog_timeout == 60);
    /* --model is SGLang's alias; the last of a repeated flag wins, as argparse */
    assert_int_equal(run("--model m1 --port 1 --port 2", &a), 0);
    assert_string_equal(a.model_path, "m1");
    assert_int_equal(a.port, 2);
}

static void test_usage_errors(void **state) {
    (void)state;
    static const struct {
        const char *args, *msg;
    } cases[] = {
        {"--port 1", "required: --model-path"},
        {"--model-path m --no-such-flag 1", "unknown flag --no-such-flag"},
        {"--model-path m --port abc", "--port: expected an integer, got 'abc'"},
        {"--model-path m --port 70000", "--port: 70000 is out of range"},
        {"--model-path m --port 0", "--port: 0 is out of range"},
        {"--model-path m --port", "--port expects a value"},
        {"--model-path m --mem-fraction-static x", "--mem-fraction-static: expected a number"},
        {"--model-path m --mem-fraction-static 1.5", "out of range"},
        {"--model-path m --mem-fraction-static nan", "expected a number"},
        {"--model-path m --schedule-policy bogus", "--schedule-policy: invalid choice 'bogus'"},
        {"--model-path m --disaggregation-mode both", "invalid choice 'both'"},
        {"--model-path m --kv-cache-dtype int4", "invalid choice 'int4'"},
        {"--model-path m --log-level loud", "invalid choice 'loud'"},
        {"--model-path m --chunked-prefill-size 0", "out of range"},
        {"--model-path m --page-size 0", "out of range"},
        {"--model-path m --tp-size 0", "out of range"},
        {"--model-path m --log-requests=yes", "--log-requests takes no value"},
        {"--model-path m extra", "unexpected argument 'extra'"},
        {"--model-path m --node-rank 1", "--node-rank 1 must be below --nnodes 1"},
        {"--model-path m --dist-init-addr nohostport", "expected HOST:PORT"},
        {"--model-path m --disaggregation-bootstrap-port 99999", "out of range"},
        {"--model-path m --context-length 12.5", "expected an integer"},
        {"--model-path m --port 30000x", "expected an integer"},
        {"--model-path m --random-seed 99999999999999999999", "expected an integer"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        server_args a;
        int rc = run(cases[i].args, &a);
        if (rc != 2) fail_msg("'%s' gave %d, want 2", cases[i].args, rc);
        if (!strstr(err, cases[i].msg))
            fail_msg("'%s': message '%s' lacks '%s'", cases[i].args, err, cases[i].msg);
    }
}

static void test_help_and_table(void **state) {
    (void)state;
    server_args a;
    assert_int_equal(run("--help", &a), 1);
    assert_int_equal(run("--model-path m --port bad -h", &a), 1);
    int n = 0;
    const server_arg_spec *t = server_args_table(&n);
    assert_true(n >= 50);
    for (int i = 0; i < n; i++) {
        assert_non_null(t[i].help);
        /* a flag that can refuse must say why */
        if (t[i].honoured) assert_non_null(t[i].refusal);
        for (int j = i + 1; j < n; j++)
            assert_string_not_equal(t[i].name, t[j].name);
    }
}

static void test_json_dump(void **state) {
    (void)state;
    server_args a;
    assert_int_equal(run("--model-path m --disaggregation-mode prefill "
                         "--disaggregation-bootstrap-port 6657 --mem-fraction-static 0.5",
                         &a),
                     0);
    json_t *j = server_args_to_json(&a);
    int n = 0;
    server_args_table(&n);
    assert_int_equal((int)json_object_size(j), n);
    assert_string_equal(json_string_value(json_object_get(j, "model_path")), "m");
    assert_int_equal(json_integer_value(json_object_get(j, "port")), 30000);
    assert_int_equal(json_integer_value(json_object_get(j, "disaggregation_bootstrap_port")), 6657);
    assert_string_equal(json_string_value(json_object_get(j, "disaggregation_mode")), "prefill");
    assert_true(json_real_value(json_object_get(j, "mem_fraction_static")) == 0.5);
    assert_true(json_is_null(json_object_get(j, "context_length")));
    assert_true(json_is_null(json_object_get(j, "api_key")));
    assert_true(json_is_false(json_object_get(j, "enable_metrics")));
    json_decref(j);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_commands_refused),
        cmocka_unit_test(test_supported_equivalents_accepted),
        cmocka_unit_test(test_single_refusals),
        cmocka_unit_test(test_defaults_match_sglang),
        cmocka_unit_test(test_syntax_forms),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_help_and_table),
        cmocka_unit_test(test_json_dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

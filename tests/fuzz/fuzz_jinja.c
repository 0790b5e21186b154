/* libFuzzer target for the Jinja interpreter: arbitrary bytes as a chat template, parsed and
 * rendered over a small fixed conversation. Tight limits (output, steps, memory, recursion)
 * make every input finish quickly; crashes, sanitizer reports and leaks are the findings.
 * Seed it with the real templates: fuzz_jinja ../shared/testdata/templates/ */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "chat/jinja.h"

static json_t *vars;

static const char *VARS_JSON =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"},"
    " {\"role\": \"user\", \"content\": \"Hi \\u00e9\"},"
    " {\"role\": \"assistant\", \"content\": \"\", \"tool_calls\": [{\"type\": \"function\","
    "   \"function\": {\"name\": \"f\", \"arguments\": {\"x\": 1.5}}}]},"
    " {\"role\": \"tool\", \"content\": [{\"type\": \"text\", \"text\": \"ok\"}]}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {}}}],"
    " \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\"}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!vars) vars = json_loads(VARS_JSON, 0, NULL);
    if (size > 64 * 1024) return 0;
    jinja_template *t = NULL;
    char err[256];
    if (jinja_parse((const char *)data, size, &t, err, sizeof err) != JINJA_OK) return 0;
    jinja_limits lim = jinja_default_limits();
    lim.max_output = 1 << 16;
    lim.max_memory = 16 << 20;
    lim.max_steps = 20000;
    lim.max_depth = 20;
    char *out = NULL;
    size_t len = 0;
    if (jinja_render(t, vars, &lim, &out, &len, err, sizeof err) == JINJA_OK) free(out);
    jinja_free(t);
    return 0;
}

/* Unit tests of the Jinja interpreter: a table of small templates, each with the output Python's
 * jinja2 (3.1, with transformers' settings: sandbox, trim_blocks, lstrip_blocks, loopcontrols,
 * HF's tojson) gave for it when the case was written, plus the error kind jinja2 reports for
 * broken or refusing templates, the limits that keep hostile templates bounded, and the
 * chat_template API (builtins, continue_final_message). */
/* clang-format off: cmocka needs these headers first, in this order */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/chat_template.h"
#include "chat/jinja.h"

/* the variables every case renders with */
static const char *VARS =
    "{\"msgs\": [{\"role\": \"system\", \"content\": \"S\"}, {\"role\": \"user\", \"content\": "
    "\"Hi\"}, {\"role\": \"assistant\", \"content\": \"Yo\"}], \"d\": {\"b\": 2, \"a\": 1, \"c\": "
    "[1, 2.5, \"x\"]}, \"s\": \"  Hello, World!  \", \"n\": 7, \"f\": 2.5, \"t\": true, \"z\": "
    "null, \"u\": \"h\\u00e9llo w\\u00f6rld\", \"e\": [], \"words\": [\"b\", \"A\", \"c\", \"a\"]}";

typedef struct {
    const char *src, *expected;
} render_case;

static const render_case CASES[] = {
    {"{{ '%5s|' % 'ab' }}{{ '%-4s|' % '\303\251' }}{{ '%.1s' % 'xyz' }}",
     "   ab|\303\251   |x"},
    {"a\n  {% if t %}\n  yes\n  {% endif %}\nb", "a\n  yes\nb"},
    {"a {{- ' x ' -}} b", "a x b"},
    {"a\n{#- comment -#}\n b", "ab"},
    {"  {%+ if t %}x{% endif %}", "  x"},
    {"{% if t +%}\nx{% endif %}", "\nx"},
    {"x  {# c #}  y\n  {# own line #}\nz", "x    y\nz"},
    {"{% for i in [1,2] %}\n  {{ i }}\n{% endfor %}\n", "  1\n  2\n"},
    {"line\r\nnext\n\n", "line\nnext\n"},
    {"{% raw %}{{ not parsed }}{% endraw %}", "{{ not parsed }}"},
    {"{{ 1 }} {{ -2 }} {{ 3.0 }} {{ 1e20 }} {{ 1.5e-7 }} {{ 0.1 + 0.2 }} {{ 10 / 4 }} {{ 7 // 2 }} "
     "{{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 2 ** -1 }}",
     "1 -2 3.0 1e+20 1.5e-07 0.30000000000000004 2.5 3 -4 2 1024 0.5"},
    {"{{ true }} {{ False }} {{ none }} {{ None }} {{ [1, 'a', none, true] }} {{ (1,) }} {{ (1, "
     "'b') }} {{ {'k': 'v', 'n': [1]} }}",
     "True False None None [1, 'a', None, True] (1,) (1, 'b') {'k': 'v', 'n': [1]}"},
    {"{{ \"it's\" }} {{ ['it\\'s', \"q\\\"\", 'nl\\n'] }} {{ 'tab\\tend' }} {{ '\\u00e9\\x41' }}",
     "it's [\"it's\", 'q\"', 'nl\\n'] tab\tend \303\251A"},
    {"{{ d }} {{ d.c }} {{ d['a'] }} {{ d.missing }}|{{ msgs[5] }}|{{ msgs[-1].role }}",
     "{'b': 2, 'a': 1, 'c': [1, 2.5, 'x']} [1, 2.5, 'x'] 1 ||assistant"},
    {"{{ f }} {{ n * f }} {{ n + t }} {{ 'ab' * 3 }} {{ [1] * 2 }} {{ [1] + [2] }} {{ 'a' ~ 1 ~ "
     "none ~ undefined_var }}",
     "2.5 17.5 8 ababab [1, 1] [1, 2] a1None"},
    {"{{ u[1:4] }}|{{ u[::-1] }}|{{ u[-3:] }}|{{ msgs[1:] | length }}|{{ [1,2,3,4,5][::2] }}|{{ "
     "u[0] }}{{ u[-1] }}",
     "\303\251ll|dlr\303\266w oll\303\251h|rld|2|[1, 3, 5]|hd"},
    {"{{ 1 < 2 < 3 }} {{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ [1,2] < [1,3] }} {{ 'ell' in u }} {{ 'q' "
     "not in u }} {{ 2 in [1,2] }} {{ 'a' in d }}",
     "True True True True False True True True"},
    {"{{ t and 'yes' }} {{ z or 'fallback' }} {{ not e }} {{ 'x' if n > 5 else 'y' }} [{{ 'x' if "
     "false }}]",
     "yes fallback True x []"},
    {"{{ n is defined }} {{ q is undefined }} {{ z is none }} {{ s is string }} {{ n is number }} "
     "{{ t is number }} {{ f is float }} {{ n is integer }} {{ t is boolean }} {{ d is mapping }} "
     "{{ msgs is iterable }} {{ s is sequence }}",
     "True True True True True True True True True True True True"},
    {"{{ n is odd }} {{ n is even }} {{ 9 is divisibleby 3 }} {{ n is divisibleby(2) }} {{ 'a' is "
     "eq 'a' }} {{ 1 is ne 2 }} {{ 'a' is in 'abc' }} {{ t is true }} {{ z is false }} {{ 3 is gt "
     "2 }} {{ s is not none }}",
     "True False True False True True True True False True True"},
    {"{% for m in msgs %}{{ loop.index }}/{{ loop.index0 }}/{{ loop.revindex }}/{{ loop.revindex0 "
     "}}/{{ loop.length }}/{{ loop.first }}/{{ loop.last }}:{{ m.role }};{% endfor %}",
     "1/0/3/2/3/True/False:system;2/1/2/1/3/False/False:user;3/2/1/0/3/False/True:assistant;"},
    {"{% for m in msgs if m.role != 'system' %}{{ loop.index }}{{ m.content }}{{ loop.previtem is "
     "defined }}{{ loop.nextitem is defined }} {% endfor %}",
     "1HiFalseTrue 2YoTrueFalse "},
    {"{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}|{% for k in d %}{{ k }}{% endfor "
     "%}|{% for x in e %}x{% else %}empty{% endfor %}",
     "b=2,a=1,c=[1, 2.5, 'x'],|bac|empty"},
    {"{% for i in range(10) %}{% if i is odd %}{% continue %}{% endif %}{% if i > 6 %}{% break "
     "%}{% endif %}{{ i }}{% endfor %}",
     "0246"},
    {"{% for i in range(3) %}{{ loop.cycle('a', 'b') }}{% endfor %}{% for a, b in [(1, 2), (3, 4)] "
     "%}{{ a + b }}{% endfor %}{{ range(2, 10, 3) | list }}",
     "aba37[2, 5, 8]"},
    {"{% for i in range(3) %}{% if i == 1 %}{% set x = 5 %}{% endif %}{{ x }},{% endfor %}{{ x }}",
     ",5,,"},
    {"{% for c in 'a\303\261b' %}[{{ c }}]{% endfor %}", "[a][\303\261][b]"},
    {"{% set ns = namespace(found=false, count=0) %}{% for m in msgs %}{% if m.role == 'user' %}{% "
     "set ns.found = true %}{% endif %}{% set ns.count = ns.count + 1 %}{% endfor %}{{ ns.found }} "
     "{{ ns.count }}",
     "True 3"},
    {"{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set x %}block {{ n }}{% endset %}[{{ x }}]{% set y | "
     "upper %}up{% endset %}{{ y }}",
     "12[block 7]UP"},
    {"{% macro greet(name, punct='!') %}Hello {{ name }}{{ punct }}{% endmacro %}{{ greet('Ann') "
     "}} {{ greet('Bob', punct='\?') }} {{ greet() }}",
     "Hello Ann! Hello Bob\? Hello !"},
    {"{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') "
     "%}bold {{ n }}{% endcall %}",
     "<b>bold 7</b>"},
    {"{% filter upper %}shout {{ s | trim }}{% endfilter %}|{% with a = 3 %}{{ a * 2 }}{% endwith "
     "%}",
     "SHOUT HELLO, WORLD!|6"},
    {"[{{ s | trim }}] [{{ s | upper }}] [{{ s | lower }}] [{{ u | title }}] [{{ 'hELLO wORLD' | "
     "capitalize }}] [{{ u | length }}] [{{ s | wordcount }}] [{{ 'ab' | center(8) }}]",
     "[Hello, World!] [  HELLO, WORLD!  ] [  hello, world!  ] [H\303\251llo W\303\266rld] [Hello "
     "world] [11] [2] [   ab   ]"},
    {"{{ s | replace('l', 'L') }}|{{ s | replace('l', 'L', 2) }}|{{ 'x' | replace('', '-') }}|{{ "
     "'a\\nb\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(2, true) }}|{{ 'a\\n\\nb' | indent(4, "
     "blank=true) }}",
     "  HeLLo, WorLd!  |  HeLLo, World!  |-x-|a\n  b\n\n  c|  a\n  b|a\n    \n    b"},
    {"{{ '<a href=\"x\">&\\'' | e }}|{{ 'x' | safe }}|{{ '<b>' | safe + '<i>' }}|{{ '42' | int + 1 "
     "}} {{ '4.7' | int }} {{ 'abc' | int(-1) }} {{ '3.5' | float }} {{ 2.5 | round }} {{ 3.5 | "
     "round }} {{ 2.675 | round(2) }} {{ 2.1 | round(0, 'ceil') }} {{ -3 | abs }}",
     "&lt;a href=&#34;x&#34;&gt;&amp;&#39;|x|<b>&lt;i&gt;|43 4 -1 3.5 2.0 4.0 2.67 3.0 3"},
    {"{{ z | default('dflt') }} {{ q | default('dflt') }} {{ q | d('D') }} {{ '' | "
     "default('empty', true) }} {{ 0 | default(5) }}",
     "None dflt D empty 0"},
    {"{{ z | string }} {{ n | string }} {{ [1, 'a'] | string }} {{ d | length }} {{ e | first is "
     "defined }} {{ msgs | first }} {{ msgs | last }}",
     "None 7 [1, 'a'] 3 False {'role': 'system', 'content': 'S'} {'role': 'assistant', 'content': "
     "'Yo'}"},
    {"{{ words | sort }} {{ words | sort(case_sensitive=true) }} {{ words | sort(reverse=true) }} "
     "{{ msgs | sort(attribute='role') | map(attribute='role') | join(',') }}",
     "['A', 'a', 'b', 'c'] ['A', 'a', 'b', 'c'] ['c', 'b', 'A', 'a'] assistant,system,user"},
    {"{{ words | join('-') }} {{ msgs | map(attribute='content') | list }} {{ msgs | "
     "selectattr('role', 'equalto', 'user') | list | length }} {{ msgs | rejectattr('role', 'in', "
     "['system']) | map(attribute='role') | join }}",
     "b-A-c-a ['S', 'Hi', 'Yo'] 1 userassistant"},
    {"{{ [1, 2, 3, 4] | select('odd') | list }} {{ [1, 2, 3, 4] | reject('odd') | list }} {{ ['a', "
     "'A', 'b'] | unique | list }} {{ [3, 1, 2] | min }} {{ [3, 1, 2] | max }} {{ [1, 2.5] | sum "
     "}} {{ [1, 2, 3] | reverse | list }}",
     "[1, 3] [2, 4] ['a', 'b'] 1 3 3.5 [3, 2, 1]"},
    {"{{ d | dictsort }} {{ d | items | list }} {{ [1, 2, 3, 4, 5] | batch(2) | list }} {{ ['x', "
     "'y'] | map('upper') | list }} {{ msgs | selectattr('role') | list | length }} {{ e | "
     "selectattr('x') | list }}",
     "[('a', 1), ('b', 2), ('c', [1, 2.5, 'x'])] [('b', 2), ('a', 1), ('c', [1, 2.5, 'x'])] [[1, "
     "2], [3, 4], [5]] ['X', 'Y'] 3 []"},
    {"{% if msgs | selectattr('role', 'equalto', 'nobody') %}gen-true{% endif %} {{ 'abc' | list "
     "}} {{ msgs[0] | dictsort | first }}",
     "gen-true ['a', 'b', 'c'] ('content', 'S')"},
    {"{{ d | tojson }}|{{ d | tojson(indent=2) }}|{{ u | tojson }}|{{ u | "
     "tojson(ensure_ascii=true) }}|{{ d | tojson(sort_keys=true) }}|{{ [1, 'a'] | "
     "tojson(separators=(',', ':')) }}|{{ 'q\"\\n\\t\\u0001' | tojson }}|{{ 1.0 | tojson }}|{{ "
     "none | tojson }}",
     "{\"b\": 2, \"a\": 1, \"c\": [1, 2.5, \"x\"]}|{\n  \"b\": 2,\n  \"a\": 1,\n  \"c\": [\n    "
     "1,\n    2.5,\n    \"x\"\n  ]\n}|\"h\303\251llo w\303\266rld\"|\"h\\u00e9llo "
     "w\\u00f6rld\"|{\"a\": 1, \"b\": 2, \"c\": [1, 2.5, "
     "\"x\"]}|[1,\"a\"]|\"q\\\"\\n\\t\\u0001\"|1.0|null"},
    {"{{ {'a': {'b': []}, 'c': {}} | tojson(indent=4) }}",
     "{\n    \"a\": {\n        \"b\": []\n    },\n    \"c\": {}\n}"},
    {"[{{ s.strip() }}] [{{ s.lstrip() }}] [{{ s.rstrip() }}] [{{ 'xxhixx'.strip('x') }}] [{{ "
     "s.strip().startswith('Hell') }}] [{{ s.endswith(('!', '  ')) }}]",
     "[Hello, World!] [Hello, World!  ] [  Hello, World!] [hi] [True] [True]"},
    {"{{ 'a,b,,c'.split(',') }} {{ '  a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a b "
     "c'.rsplit(' ', 1) }} {{ 'x</think>y'.split('</think>')[-1] }} {{ 'ab'.upper() }} {{ "
     "'AB'.lower() }} {{ 'hi there'.title() }}",
     "['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c'] ['a b', 'c'] y AB ab Hi There"},
    {"{{ 'hello'.replace('l', 'L') }} {{ 'hello'.find('l') }} {{ 'hello'.rfind('l') }} {{ "
     "'hello'.count('l') }} {{ '-'.join(['a', 'b']) }} {{ 'x={} y={}'.format(1, 'two') }} {{ "
     "'%s-%d' % ('a', 3) }} {{ 'hello'.capitalize() }}",
     "heLLo 2 3 2 a-b x=1 y=two a-3 Hello"},
    {"{{ d.get('a') }} {{ d.get('zz', 'none!') }} {{ d.get('zz') }} {{ d.keys() | list }} {{ "
     "d.values() | list | length }} {{ [1, 2, 1].count(1) }} {{ 'a\\nb'.splitlines() }} {{ "
     "'12'.isdigit() }}",
     "1 none! None ['b', 'a', 'c'] 3 2 ['a', 'b'] True"},
    {"{{ strftime_now('%Y-%m-%d %d %b %Y') }}", "2024-07-26 26 Jul 2024"},
    {"{{ u | upper }} {{ '\346\227\245\346\234\254\350\252\236' | length }} {{ "
     "'\360\237\232\200x'[1] }}",
     "H\303\211LLO W\303\226RLD 3 x"},
};

typedef struct {
    const char *src;
    int status; /* jinja_status */
} error_case;

static const error_case ERRORS[] = {
    {"{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}",
     1},
    {"{% if msgs[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif "
     "%}",
     1},
    {"{{ q.attr }}", 3},
    {"{{ msgs[0].nothing.deeper }}", 3},
    {"{{ 1 + 'a' }}", 3},
    {"{% for i in range(1000000) %}{% endfor %}", 3},
    {"{{ [1].append(2) }}", 3},
    {"{{ 1 / 0 }}", 3},
    {"{% for x in 5 %}{% endfor %}", 3},
    {"{% if t %}unclosed", 2},
    {"{% endfor %}", 2},
    {"{{ 'unterminated }}", 2},
    {"{{ (1 }}", 2},
    {"{% foo %}", 2},
    {"{{ 1 + }}", 2},
};

static json_t *vars(void) {
    json_error_t je;
    json_t *v = json_loads(VARS, 0, &je);
    assert_non_null(v);
    return v;
}

static void test_render_table(void **state) {
    (void)state;
    json_t *v = vars();
    int failures = 0;
    setenv("SGLC_TEMPLATE_TIME", "1721995200", 1);
    setenv("TZ", "UTC", 1);
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        jinja_template *t;
        char err[512] = "";
        jinja_status st = jinja_parse(CASES[i].src, strlen(CASES[i].src), &t, err, sizeof err);
        if (st != JINJA_OK) {
            fprintf(stderr, "case %zu: parse failed: %s\n  %s\n", i, err, CASES[i].src);
            failures++;
            continue;
        }
        char *out = NULL;
        size_t len = 0;
        st = jinja_render(t, v, NULL, &out, &len, err, sizeof err);
        if (st != JINJA_OK) {
            fprintf(stderr, "case %zu: render failed: %s\n  %s\n", i, err, CASES[i].src);
            failures++;
        } else if (len != strlen(CASES[i].expected) || memcmp(out, CASES[i].expected, len)) {
            fprintf(stderr, "case %zu:\n  template: %s\n  expected: [%s]\n  got:      [%s]\n", i,
                    CASES[i].src, CASES[i].expected, out);
            failures++;
        }
        free(out);
        jinja_free(t);
    }
    json_decref(v);
    assert_int_equal(failures, 0);
}

static jinja_status run(const char *src, const json_t *v, const jinja_limits *lim, char *err,
                        size_t err_len, char **out) {
    jinja_template *t;
    jinja_status st = jinja_parse(src, strlen(src), &t, err, err_len);
    if (st != JINJA_OK) return st;
    char *o = NULL;
    st = jinja_render(t, v, lim, &o, NULL, err, err_len);
    jinja_free(t);
    if (out)
        *out = o;
    else
        free(o);
    return st;
}

static void test_error_kinds(void **state) {
    (void)state;
    json_t *v = vars();
    for (size_t i = 0; i < sizeof ERRORS / sizeof ERRORS[0]; i++) {
        char err[512] = "";
        jinja_status st = run(ERRORS[i].src, v, NULL, err, sizeof err, NULL);
        if ((int)st != ERRORS[i].status)
            fprintf(stderr, "error case %zu (%s): status %d, want %d (%s)\n", i, ERRORS[i].src, st,
                    ERRORS[i].status, err);
        assert_int_equal(st, ERRORS[i].status);
        assert_true(err[0] != 0);
    }
    json_decref(v);
}

static void test_raise_message_exact(void **state) {
    (void)state;
    char err[256];
    assert_int_equal(run("{{ raise_exception('Only user and assistant roles are supported!') }}",
                         NULL, NULL, err, sizeof err, NULL),
                     JINJA_ERR_RAISED);
    assert_string_equal(err, "Only user and assistant roles are supported!");
}

static void test_syntax_error_names_line(void **state) {
    (void)state;
    char err[256];
    assert_int_equal(
        run("line one\n{% if x %}\nthree\n{% endfor %}", NULL, NULL, err, sizeof err, NULL),
        JINJA_ERR_SYNTAX);
    assert_non_null(strstr(err, "line 4"));
}

static void test_limits(void **state) {
    (void)state;
    jinja_limits lim = jinja_default_limits();
    lim.max_output = 1000;
    lim.max_steps = 10000;
    char err[256];
    /* output bound */
    assert_int_equal(run("{% for i in range(100) %}{{ 'x' * 50 }}{% endfor %}", NULL, &lim, err,
                         sizeof err, NULL),
                     JINJA_ERR_RENDER);
    /* step bound: nested loops within the sandbox's range limit */
    assert_int_equal(
        run("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", NULL,
            &lim, err, sizeof err, NULL),
        JINJA_ERR_RENDER);
    /* work that allocates nothing is counted too: repeating empty values (once an endless
     * loop), unique's pairwise comparisons, comparing and searching large values in a loop */
    const char *busy[] = {
        "{{ '' * 99999999999 }}",
        "{{ ([] * 99999999999)|length }}",
        "{{ (range(5000)|list)|unique|list|length }}",
        "{% set l = range(100)|list %}{% for i in range(200) %}{% if l == l %}{% endif %}"
        "{% endfor %}",
        "{% set s = 'ab' * 4000 %}{% for i in range(200) %}{% if 'c' in s %}{% endif %}"
        "{% endfor %}",
        "{% set s = 'ab' * 4000 %}{% for i in range(200) %}{% if s.count('a') %}{% endif %}"
        "{% endfor %}",
    };
    jinja_limits busy_lim = lim;
    busy_lim.max_output = 1 << 20;
    for (size_t i = 0; i < sizeof busy / sizeof *busy; i++) {
        err[0] = 0;
        assert_int_equal(run(busy[i], NULL, &busy_lim, err, sizeof err, NULL), JINJA_ERR_RENDER);
        if (!strstr(err, "too long")) fail_msg("case %zu: %s", i, err);
    }
    /* a NUL inside a %-format is an unsupported conversion, never part of a printf format */
    static const char nul_fmt[] = "{{ '%9\0\0e' % 3 }}{{ '%\0' % 1 }}";
    jinja_template *nt;
    assert_int_equal(jinja_parse(nul_fmt, sizeof nul_fmt - 1, &nt, err, sizeof err), JINJA_OK);
    char *nout = NULL;
    assert_int_equal(jinja_render(nt, NULL, NULL, &nout, NULL, err, sizeof err), JINJA_ERR_RENDER);
    assert_non_null(strstr(err, "unsupported format character 0x00"));
    jinja_free(nt);
    /* a wide numeric field comes out whole */
    char *wide = NULL;
    assert_int_equal(run("{{ '%2000d' % 7 }}", NULL, NULL, err, sizeof err, &wide), JINJA_OK);
    assert_int_equal(strlen(wide), 2000);
    assert_int_equal(wide[1999], '7');
    free(wide);
    /* widths and precisions are bounded before they reach printf or an int */
    assert_int_equal(run("{{ '%98886444444444444440s' % 3 }}", NULL, NULL, err, sizeof err, NULL),
                     JINJA_ERR_RENDER);
    assert_non_null(strstr(err, "width too large"));
    assert_int_equal(run("{{ '%.98886444444444444440f' % 3 }}", NULL, NULL, err, sizeof err, NULL),
                     JINJA_ERR_RENDER);
    assert_non_null(strstr(err, "precision too large"));
    /* ...and a real template's work fits well inside the default bound */
    assert_int_equal(run("{{ '' * 3 }}{{ (range(50)|list)|unique|list|length }}", NULL, &lim, err,
                         sizeof err, NULL),
                     JINJA_OK);
    /* recursion bound */
    assert_int_equal(
        run("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}", NULL, &lim, err, sizeof err, NULL),
        JINJA_ERR_RENDER);
    /* memory bound */
    lim.max_memory = 1 << 20;
    lim.max_output = 1 << 30;
    lim.max_steps = 1000000;
    assert_int_equal(run("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = "
                         "ns.s ~ ns.s %}{% endfor %}",
                         NULL, &lim, err, sizeof err, NULL),
                     JINJA_ERR_RENDER);
    /* deep nesting in the parser */
    char deep[3000];
    size_t k = 0;
    k += (size_t)snprintf(deep, sizeof deep, "{{ ");
    for (int i = 0; i < 1000; i++) deep[k++] = '(';
    deep[k++] = '1';
    for (int i = 0; i < 1000; i++) deep[k++] = ')';
    snprintf(deep + k, sizeof deep - k, " }}");
    assert_int_equal(run(deep, NULL, NULL, err, sizeof err, NULL), JINJA_ERR_SYNTAX);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    size_t got = fread(b, 1, (size_t)n, f);
    b[got] = 0;
    fclose(f);
    return b;
}

static void test_builtins_match_testdata(void **state) {
    (void)state;
    static const char *pairs[][2] = {
        {"qwen2", "Qwen-Qwen2.5-7B-Instruct.jinja"},
        {"qwen3", "Qwen-Qwen3-0.6B.jinja"},
        {"llama-3.1", "meta-llama-Llama-3.1-8B-Instruct.jinja"},
        {"deepseek-v3", "deepseek-ai-DeepSeek-V3.1.jinja"},
        {"mistral-nemo", "mistralai-Mistral-Nemo-Instruct-2407.jinja"},
        {"kimi-k2", "moonshotai-Kimi-K2.jinja"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "../shared/testdata/templates/%s", pairs[i][1]);
        char *want = slurp(path);
        if (!want) {
            fprintf(stderr, "skipping %s: %s not found\n", pairs[i][0], path);
            continue;
        }
        const char *got = chat_template_builtin(pairs[i][0]);
        assert_non_null(got);
        assert_string_equal(got, want);
        free(want);
    }
    for (const char *const *n = chat_template_builtin_names(); *n; n++) {
        char err[256];
        jinja_template *t;
        const char *src = chat_template_builtin(*n);
        assert_int_equal(jinja_parse(src, strlen(src), &t, err, sizeof err), JINJA_OK);
        jinja_free(t);
    }
    assert_null(chat_template_builtin("no-such-template"));
}

static void test_chat_render_api(void **state) {
    (void)state;
    json_t *msgs = json_loads("[{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"assistant\","
                              "\"content\":\"The answer is  \"}]",
                              0, NULL);
    char *out = NULL;
    char err[256];
    const char *chatml = chat_template_builtin("chatml");
    assert_int_equal(
        chat_render(chatml, msgs, NULL, true, "<s>", "</s>", NULL, &out, err, sizeof err), CHAT_OK);
    assert_string_equal(out,
                        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nThe answer is  "
                        "<|im_end|>\n<|im_start|>assistant\n");
    free(out);
    /* continue_final_message: cut after the final message, its trailing spaces dropped
     * (transformers keeps them only when the text had no leading whitespace and matched whole) */
    chat_render_args a = {.messages = msgs, .continue_final_message = true};
    size_t len;
    assert_int_equal(chat_template_render(chatml, &a, &out, &len, err, sizeof err), CHAT_OK);
    assert_string_equal(out,
                        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nThe answer is  ");
    assert_int_equal(len, strlen(out));
    free(out);
    a.add_generation_prompt = true;
    assert_int_equal(chat_template_render(chatml, &a, &out, &len, err, sizeof err), CHAT_ERR_INPUT);
    /* raise_exception: CHAT_ERR_RAISED with the message alone */
    json_t *empty = json_object();
    assert_int_equal(chat_render(chat_template_builtin("mistral"), msgs, NULL, false, "<s>", "</s>",
                                 empty, &out, err, sizeof err),
                     CHAT_OK);
    assert_string_equal(out, "<s>[INST] Hi [/INST]The answer is  </s>");
    free(out);
    json_decref(empty);
    json_t *bad = json_loads("[{\"role\":\"assistant\",\"content\":\"x\"}]", 0, NULL);
    assert_int_equal(chat_render(chat_template_builtin("mistral"), bad, NULL, false, "<s>", "</s>",
                                 NULL, &out, err, sizeof err),
                     CHAT_ERR_RAISED);
    assert_string_equal(err, "Conversation roles must alternate user/assistant/user/assistant/...");
    assert_int_equal(
        chat_render("{% if %}", bad, NULL, false, NULL, NULL, NULL, &out, err, sizeof err),
        CHAT_ERR_SYNTAX);
    /* kwargs reach the template and override the defaults */
    json_t *kw = json_loads("{\"add_generation_prompt\": false, \"flavour\": \"mint\"}", 0, NULL);
    assert_int_equal(chat_render("{{ flavour }}{{ add_generation_prompt }}{{ tools }}", bad, NULL,
                                 true, NULL, NULL, kw, &out, err, sizeof err),
                     CHAT_OK);
    assert_string_equal(out, "mintFalseNone");
    free(out);
    json_decref(kw);
    json_decref(bad);
    json_decref(msgs);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_table),
        cmocka_unit_test(test_error_kinds),
        cmocka_unit_test(test_raise_message_exact),
        cmocka_unit_test(test_syntax_error_names_line),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_builtins_match_testdata),
        cmocka_unit_test(test_chat_render_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

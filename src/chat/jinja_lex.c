/* Jinja2's lexer with the settings transformers uses (trim_blocks, lstrip_blocks,
 * keep_trailing_newline off): it mirrors jinja2/lexer.py rule for rule, because the whitespace a
 * chat template emits is decided here and must match Python's byte for byte. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "chat/jinja_internal.h"

static void push(jctx *c, jtoks *ts, jtok t) {
    if (ts->n == ts->cap) {
        size_t cap = ts->cap ? ts->cap * 2 : 256;
        jtok *nt = jarena_alloc(c, cap * sizeof *nt);
        if (ts->n) memcpy(nt, ts->t, ts->n * sizeof *nt);
        ts->t = nt;
        ts->cap = cap;
    }
    ts->t[ts->n++] = t;
}

static int count_nl(const char *s, size_t n) {
    int k = 0;
    for (size_t i = 0; i < n; i++) k += s[i] == '\n';
    return k;
}

/* Length of the Python-whitespace prefix of s[pos..n). */
static size_t ws_span(const char *s, size_t n, size_t pos) {
    size_t i = pos, l;
    while (i < n && jpy_isspace_at(s, n, i, &l)) i += l;
    return i - pos;
}

/* Length of text after stripping trailing Python whitespace. */
static size_t rstrip_len(const char *s, size_t n) {
    size_t end = n;
    for (;;) {
        if (!end) return 0;
        size_t st = end - 1;
        while (st > 0 && ((unsigned char)s[st] & 0xC0) == 0x80) st--;
        size_t l;
        if (!jpy_isspace_at(s, n, st, &l) || st + l != end) return end;
        end = st;
    }
}

static void emit_data(jctx *c, jtoks *ts, const char *s, size_t n, int line) {
    if (n) push(c, ts, (jtok){.k = TK_DATA, .line = line, .s = s, .n = n});
}

/* Applies '-' / lstrip_blocks to the text before a tag; returns the kept length. */
static size_t strip_before(const char *text, size_t n, char sign, bool is_var, bool line_starting) {
    if (sign == '-') return rstrip_len(text, n);
    if (sign == '+' || is_var) return n;
    size_t l_pos = 0;
    for (size_t i = n; i > 0; i--)
        if (text[i - 1] == '\n') {
            l_pos = i;
            break;
        }
    if (l_pos > 0 || line_starting) {
        if (l_pos < n && ws_span(text, n, l_pos) == n - l_pos) return l_pos;
    }
    return n;
}

/* Python's "unicode-escape" decoding of a string literal's body. */
static void decode_string(jctx *c, const char *s, size_t n, jtok *t) {
    char *out = jarena_alloc(c, n + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\' || i + 1 >= n) {
            out[k++] = s[i];
            continue;
        }
        char e = s[++i];
        uint32_t cp = 0;
        int hex = 0;
        switch (e) {
        case 'n': out[k++] = '\n'; continue;
        case 't': out[k++] = '\t'; continue;
        case 'r': out[k++] = '\r'; continue;
        case '\\': out[k++] = '\\'; continue;
        case '\'': out[k++] = '\''; continue;
        case '"': out[k++] = '"'; continue;
        case 'a': out[k++] = '\a'; continue;
        case 'b': out[k++] = '\b'; continue;
        case 'f': out[k++] = '\f'; continue;
        case 'v': out[k++] = '\v'; continue;
        case '\n': continue;
        case 'x': hex = 2; break;
        case 'u': hex = 4; break;
        case 'U': hex = 8; break;
        default:
            if (e >= '0' && e <= '7') {
                int d = 0;
                while (d < 3 && i < n && s[i] >= '0' && s[i] <= '7')
                    cp = cp * 8 + (uint32_t)(s[i++] - '0'), d++;
                i--;
                hex = -1;
                break;
            }
            out[k++] = '\\';
            out[k++] = e;
            continue;
        }
        if (hex > 0) {
            if (i + (size_t)hex >= n)
                jfail(c, JINJA_ERR_SYNTAX, "line %d: truncated \\%c escape", t->line, e);
            for (int d = 0; d < hex; d++) {
                char h = s[i + 1 + (size_t)d];
                if (!isxdigit((unsigned char)h))
                    jfail(c, JINJA_ERR_SYNTAX, "line %d: truncated \\%c escape", t->line, e);
                cp = cp * 16 +
                     (uint32_t)(isdigit((unsigned char)h) ? h - '0' : (tolower(h) - 'a' + 10));
            }
            i += (size_t)hex;
        }
        if (cp > 0x10FFFF)
            jfail(c, JINJA_ERR_SYNTAX, "line %d: illegal Unicode character", t->line);
        /* each escaped code point becomes UTF-8; k never outruns n since an escape is >= its output
         */
        if (cp < 0x80)
            out[k++] = (char)cp;
        else if (cp < 0x800) {
            out[k++] = (char)(0xC0 | (cp >> 6));
            out[k++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out[k++] = (char)(0xE0 | (cp >> 12));
            out[k++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[k++] = (char)(0x80 | (cp & 0x3F));
        } else {
            out[k++] = (char)(0xF0 | (cp >> 18));
            out[k++] = (char)(0x80 | ((cp >> 12) & 0x3F));
            out[k++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[k++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    t->s = out;
    t->n = k;
}

static bool is_name_start(unsigned char ch) { return isalpha(ch) || ch == '_'; }
static bool is_name_char(unsigned char ch) { return isalnum(ch) || ch == '_'; }

/* Lexes the inside of {{ }} or {% %} from *pos; stops after the end tag. Returns whether the
 * end tag asked for the following whitespace to be kept ('+') or eaten ('-'). */
static void lex_tag(jctx *c, const char *s, size_t n, size_t *pos, int *line, bool is_block,
                    jtoks *ts, bool *line_starting) {
    size_t i = *pos;
    char stack[64];
    int depth = 0;
    for (;;) {
        /* end of tag (only when brackets balance) */
        if (depth == 0 && i < n) {
            const char *end = is_block ? "%}" : "}}";
            if (s[i] == '-' && i + 2 < n + 0 && !strncmp(s + i + 1, end, 2)) {
                push(c, ts, (jtok){.k = is_block ? TK_BLOCK_END : TK_VAR_END, .line = *line});
                i += 3;
                size_t w = ws_span(s, n, i);
                *line += count_nl(s + i, w);
                *line_starting = w ? s[i + w - 1] == '\n' : false;
                *pos = i + w;
                return;
            }
            if (is_block && s[i] == '+' && i + 2 < n + 0 && !strncmp(s + i + 1, end, 2)) {
                push(c, ts, (jtok){.k = TK_BLOCK_END, .line = *line});
                *pos = i + 3;
                *line_starting = false;
                return;
            }
            if (i + 1 < n && !strncmp(s + i, end, 2)) {
                push(c, ts, (jtok){.k = is_block ? TK_BLOCK_END : TK_VAR_END, .line = *line});
                i += 2;
                *line_starting = false;
                if (is_block && i < n && s[i] == '\n') { /* trim_blocks */
                    i++;
                    (*line)++;
                    *line_starting = true;
                }
                *pos = i;
                return;
            }
        }
        if (i >= n)
            jfail(c, JINJA_ERR_SYNTAX, "line %d: unexpected end of template, expected end of %s",
                  *line, is_block ? "statement block" : "print statement");
        unsigned char ch = (unsigned char)s[i];
        if (isspace(ch)) {
            if (ch == '\n') (*line)++;
            i++;
            continue;
        }
        jtok t = {.line = *line};
        if (is_name_start(ch)) {
            size_t st = i;
            while (i < n && is_name_char((unsigned char)s[i])) i++;
            t.k = TK_NAME;
            t.s = s + st;
            t.n = i - st;
            push(c, ts, t);
            continue;
        }
        if (ch == '\'' || ch == '"') {
            size_t st = ++i;
            while (i < n && s[i] != (char)ch) {
                if (s[i] == '\\' && i + 1 < n) i++;
                i++;
            }
            if (i >= n) jfail(c, JINJA_ERR_SYNTAX, "line %d: unexpected end of string", *line);
            t.k = TK_STRING;
            decode_string(c, s + st, i - st, &t);
            *line += count_nl(s + st, i - st);
            i++;
            push(c, ts, t);
            continue;
        }
        if (isdigit(ch)) {
            size_t st = i;
            while (i < n && (isdigit((unsigned char)s[i]) || s[i] == '_')) i++;
            bool is_float = false;
            bool after_dot = st > 0 && s[st - 1] == '.';
            if (!after_dot && i + 1 < n && s[i] == '.' && isdigit((unsigned char)s[i + 1])) {
                is_float = true;
                i++;
                while (i < n && (isdigit((unsigned char)s[i]) || s[i] == '_')) i++;
            }
            if (!after_dot && i < n && (s[i] == 'e' || s[i] == 'E')) {
                size_t j = i + 1;
                if (j < n && (s[j] == '+' || s[j] == '-')) j++;
                if (j < n && isdigit((unsigned char)s[j])) {
                    while (j < n && isdigit((unsigned char)s[j])) j++;
                    i = j;
                    is_float = true;
                }
            }
            char num[64];
            size_t k = 0;
            for (size_t j = st; j < i && k < sizeof num - 1; j++)
                if (s[j] != '_') num[k++] = s[j];
            num[k] = 0;
            if (is_float) {
                t.k = TK_FLOAT;
                t.f = strtod(num, NULL);
            } else {
                t.k = TK_INT;
                char *e;
                unsigned long long v = strtoull(num, &e, 10);
                if (k > 18 || v > (unsigned long long)INT64_MAX)
                    jfail(c, JINJA_ERR_SYNTAX, "line %d: integer literal too large", *line);
                t.i = (int64_t)v;
            }
            push(c, ts, t);
            continue;
        }
        static const char *ops2[] = {"//", "**", "==", "!=", "<=", ">="};
        t.k = TK_OP;
        t.s = s + i;
        t.n = 0;
        for (size_t k = 0; k < 6; k++)
            if (i + 1 < n && !strncmp(s + i, ops2[k], 2)) t.n = 2;
        if (!t.n && strchr("+-/*%~[](){}<>=.:|,;", ch) && ch) t.n = 1;
        if (!t.n) jfail(c, JINJA_ERR_SYNTAX, "line %d: unexpected char '%c'", *line, ch);
        if (t.n == 1) {
            if (ch == '(' || ch == '[' || ch == '{') {
                if (depth >= (int)sizeof stack)
                    jfail(c, JINJA_ERR_SYNTAX, "line %d: brackets nested too deep", *line);
                stack[depth++] = ch == '(' ? ')' : ch == '[' ? ']' : '}';
            } else if (ch == ')' || ch == ']' || ch == '}') {
                if (!depth) jfail(c, JINJA_ERR_SYNTAX, "line %d: unexpected '%c'", *line, ch);
                if (stack[depth - 1] != (char)ch)
                    jfail(c, JINJA_ERR_SYNTAX, "line %d: unexpected '%c', expected '%c'", *line, ch,
                          stack[depth - 1]);
                depth--;
            }
        }
        i += t.n;
        push(c, ts, t);
    }
}

/* After "{%": if this is "{% raw %}", lex the raw body and return true. */
static bool try_raw(jctx *c, const char *s, size_t n, size_t *pos, int *line, jtoks *ts,
                    bool *line_starting) {
    size_t i = *pos;
    while (i < n && isspace((unsigned char)s[i])) i++;
    if (i + 3 > n || strncmp(s + i, "raw", 3) ||
        (i + 3 < n && is_name_char((unsigned char)s[i + 3])))
        return false;
    i += 3;
    while (i < n && isspace((unsigned char)s[i])) i++;
    if (i + 3 <= n && !strncmp(s + i, "-%}", 3))
        i += 3 + ws_span(s, n, i + 3);
    else if (i + 2 <= n && !strncmp(s + i, "%}", 2))
        i += 2; /* raw_begin takes no trim newline */
    else
        return false;
    *line += count_nl(s + *pos, i - *pos);
    *line_starting = s[i - 1] == '\n';
    for (size_t j = i; j + 1 < n; j++) {
        if (s[j] != '{' || s[j + 1] != '%') continue;
        size_t k = j + 2;
        char sign = 0;
        if (k < n && (s[k] == '-' || s[k] == '+')) sign = s[k++];
        while (k < n && isspace((unsigned char)s[k])) k++;
        if (k + 6 > n || strncmp(s + k, "endraw", 6)) continue;
        k += 6;
        while (k < n && isspace((unsigned char)s[k])) k++;
        size_t end;
        bool ls = false;
        if (k + 3 <= n && !strncmp(s + k, "-%}", 3))
            end = k + 3 + ws_span(s, n, k + 3);
        else if (k + 3 <= n && !strncmp(s + k, "+%}", 3))
            end = k + 3;
        else if (k + 2 <= n && !strncmp(s + k, "%}", 2)) {
            end = k + 2;
            if (end < n && s[end] == '\n') end++;
        } else
            continue;
        if (end > 0 && s[end - 1] == '\n') ls = true;
        size_t keep = strip_before(s + i, j - i, sign, false, *line_starting);
        emit_data(c, ts, s + i, keep, *line);
        *line += count_nl(s + i, end - i);
        *pos = end;
        *line_starting = ls;
        return true;
    }
    jfail(c, JINJA_ERR_SYNTAX, "line %d: missing end of raw directive", *line);
}

void jinja_lex(jctx *c, const char *src0, size_t len0, jtoks *ts) {
    /* newline normalisation and the dropped trailing newline, as jinja2 does before lexing */
    char *s = jarena_alloc(c, len0 + 1);
    size_t n = 0;
    for (size_t i = 0; i < len0; i++) {
        if (src0[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len0 && src0[i + 1] == '\n') i++;
        } else {
            s[n++] = src0[i];
        }
    }
    if (n && s[n - 1] == '\n') n--;
    size_t pos = 0;
    int line = 1;
    bool line_starting = true;
    while (pos < n) {
        /* find the next tag start */
        size_t j = pos;
        const char *tag = NULL;
        for (; j + 1 < n; j++)
            if (s[j] == '{' && (s[j + 1] == '{' || s[j + 1] == '%' || s[j + 1] == '#')) {
                tag = s + j;
                break;
            }
        if (!tag) {
            emit_data(c, ts, s + pos, n - pos, line);
            break;
        }
        char kind = tag[1];
        char sign = (j + 2 < n && (s[j + 2] == '-' || s[j + 2] == '+')) ? s[j + 2] : 0;
        size_t keep = strip_before(s + pos, j - pos, sign, kind == '{', line_starting);
        emit_data(c, ts, s + pos, keep, line);
        line += count_nl(s + pos, j - pos);
        size_t after = j + 2 + (sign ? 1 : 0);
        line_starting = false;
        if (kind == '#') {
            size_t k = after;
            for (; k + 1 < n; k++)
                if (s[k] == '#' && s[k + 1] == '}') break;
            if (k + 1 >= n) jfail(c, JINJA_ERR_SYNTAX, "line %d: missing end of comment tag", line);
            size_t endc = k + 2;
            /* the earliest match decides: "-#}" / "+#}" start one byte before "#}" */
            if (k > after && s[k - 1] == '-')
                endc += ws_span(s, n, endc);
            else if (k > after && s[k - 1] == '+') {
            } else if (endc < n && s[endc] == '\n')
                endc++;
            line += count_nl(s + after, endc - after);
            line_starting = endc > 0 && s[endc - 1] == '\n';
            pos = endc;
            continue;
        }
        if (kind == '%') {
            size_t p2 = after;
            if (try_raw(c, s, n, &p2, &line, ts, &line_starting)) {
                pos = p2;
                continue;
            }
            push(c, ts, (jtok){.k = TK_BLOCK_BEGIN, .line = line});
            pos = after;
            lex_tag(c, s, n, &pos, &line, true, ts, &line_starting);
        } else {
            push(c, ts, (jtok){.k = TK_VAR_BEGIN, .line = line});
            pos = after;
            lex_tag(c, s, n, &pos, &line, false, ts, &line_starting);
        }
    }
    push(c, ts, (jtok){.k = TK_EOF, .line = line});
}

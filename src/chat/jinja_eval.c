/* Executes a parsed template: scopes as jinja2 has them (a for loop body gets a fresh scope on
 * every iteration, if does not scope, macros see the scope they were defined in), Python
 * arithmetic and comparisons, loop objects, macros and call blocks, and the entry points
 * jinja_parse / jinja_render with their limits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chat/jinja_internal.h"

struct jinja_template {
    jarena arena;
    jnode *root;
};

struct jframe {
    jdict vars;
    jframe *parent;
};

enum { FLOW_NORMAL = 0, FLOW_BREAK = 1, FLOW_CONTINUE = 2 };

static jv eval(jrender *r, const jnode *n, jframe *f);
static int exec(jrender *r, const jnode *n, jframe *f, jbuf *out);

static jframe *new_frame(jrender *r, jframe *parent) {
    jframe *f = jarena_alloc(r->c, sizeof *f);
    f->parent = parent;
    return f;
}

static void frame_set(jrender *r, jframe *f, const char *name, jv v) {
    jdict_set(r->c, &f->vars, jv_cstr(name), v);
}

void jr_step(jrender *r) { jctx_work(r->c, 1); }

static char *undef_msg(jrender *r, const char *fmt, const char *a, const char *b) {
    jbuf m = {0};
    jbuf_printf(r->c, &m, fmt, a, b);
    return m.p;
}

static jv lookup(jrender *r, jframe *f, const char *name) {
    jv v;
    for (; f; f = f->parent)
        if (jdict_gets(&f->vars, name, &v)) return v;
    v = jinja_global(r, name);
    if (v.k != JV_UNDEF) return v;
    return jv_undef(undef_msg(r, "'%s' is undefined%s", name, ""));
}

static _Noreturn void fail_undef(jrender *r, jv v) {
    jfail(r->c, JINJA_ERR_RENDER, "%s", v.u.undef_why ? v.u.undef_why : "value is undefined");
}

jv jarg(const jargs *a, size_t i, const char *name, jv dflt) {
    if (i < a->npos) return a->pos[i];
    if (name)
        for (size_t k = 0; k < a->nkw; k++)
            if (!strcmp(a->kwn[k], name)) return a->kwv[k];
    return dflt;
}

bool jarg_has(const jargs *a, size_t i, const char *name) {
    if (i < a->npos) return true;
    if (name)
        for (size_t k = 0; k < a->nkw; k++)
            if (!strcmp(a->kwn[k], name)) return true;
    return false;
}

/* ---- macros ---- */
static jv call_macro(jrender *r, jfunc *fn, const jargs *a) {
    const jnode *m = fn->macro ? fn->macro : fn->caller_params;
    const jnode *body = fn->macro ? fn->macro->a : fn->caller_body;
    if (++r->depth > r->lim.max_depth)
        jfail(r->c, JINJA_ERR_RENDER, "maximum recursion depth exceeded");
    jframe *f = new_frame(r, fn->closure);
    size_t np = m ? m->items.n : 0;
    jv varargs = jv_newlist(r->c, 0, true);
    jv kwargs = jv_newdict(r->c);
    for (size_t i = 0; i < a->npos; i++) {
        if (i < np)
            frame_set(r, f, m->items.v[i]->name, a->pos[i]);
        else
            jlist_push(r->c, varargs.u.list, a->pos[i]);
    }
    for (size_t k = 0; k < a->nkw; k++) {
        bool bound = false;
        for (size_t i = 0; i < np; i++)
            if (!strcmp(m->items.v[i]->name, a->kwn[k])) {
                frame_set(r, f, a->kwn[k], a->kwv[k]);
                bound = true;
            }
        if (!bound) jdict_set(r->c, kwargs.u.dict, jv_cstr(a->kwn[k]), a->kwv[k]);
    }
    for (size_t i = a->npos; i < np; i++) {
        const char *pn = m->items.v[i]->name;
        jv tmp;
        if (jdict_gets(&f->vars, pn, &tmp)) continue;
        jv v = jv_undef(undef_msg(r, "'%s' is undefined%s", pn, ""));
        for (size_t d = 0; d < m->kwnames.n; d++)
            if (!strcmp(m->kwnames.v[d]->val.u.s.s, pn)) v = eval(r, m->kwvals.v[d], f);
        frame_set(r, f, pn, v);
    }
    frame_set(r, f, "varargs", varargs);
    frame_set(r, f, "kwargs", kwargs);
    jbuf out = {.limit = r->lim.max_output};
    exec(r, body, f, &out);
    r->depth--;
    return jv_str(out.p ? out.p : "", out.n);
}

jv jr_call(jrender *r, jv fn, const jargs *a) {
    if (fn.k == JV_UNDEF) fail_undef(r, fn);
    if (fn.k != JV_FUNC)
        jfail(r->c, JINJA_ERR_RENDER, "'%s' object is not callable", jv_typename(fn));
    if (fn.u.fn->builtin) return fn.u.fn->builtin(r, fn.u.fn->self, a);
    return call_macro(r, fn.u.fn, a);
}

/* ---- expressions ---- */
static void eval_args(jrender *r, const jnode *n, jframe *f, jargs *a) {
    a->npos = n->items.n;
    a->pos = a->npos ? jarena_alloc(r->c, a->npos * sizeof(jv)) : NULL;
    for (size_t i = 0; i < a->npos; i++) a->pos[i] = eval(r, n->items.v[i], f);
    a->nkw = n->kwnames.n;
    a->kwn = a->nkw ? jarena_alloc(r->c, a->nkw * sizeof(char *)) : NULL;
    a->kwv = a->nkw ? jarena_alloc(r->c, a->nkw * sizeof(jv)) : NULL;
    for (size_t i = 0; i < a->nkw; i++) {
        a->kwn[i] = n->kwnames.v[i]->val.u.s.s;
        a->kwv[i] = eval(r, n->kwvals.v[i], f);
    }
}

static jv int_result(jrender *r, bool overflow, const int64_t *v) {
    if (overflow) jfail(r->c, JINJA_ERR_RENDER, "integer overflow");
    return jv_int(*v);
}

static int64_t as_int(jv v) { return v.k == JV_BOOL ? v.u.b : v.u.i; }

static jv repeat(jrender *r, jv seq, int64_t times) {
    if (times < 0) times = 0;
    jctx_work(r->c, (uint64_t)times); /* repeating an empty value costs its count, too */
    if (seq.k == JV_STR) {
        if (seq.u.s.n && (uint64_t)times > r->lim.max_output / seq.u.s.n)
            jfail(r->c, JINJA_ERR_RENDER, "string repetition too large");
        jbuf b = {0};
        for (int64_t i = 0; i < times; i++) jbuf_put(r->c, &b, seq.u.s.s, seq.u.s.n);
        return jv_str(b.p ? b.p : "", b.n);
    }
    jlist *l = seq.u.list;
    if (l->n && (uint64_t)times > 1000000 / l->n)
        jfail(r->c, JINJA_ERR_RENDER, "list repetition too large");
    jv out = jv_newlist(r->c, l->n * (size_t)times, l->tuple);
    for (int64_t i = 0; i < times; i++)
        for (size_t k = 0; k < l->n; k++) jlist_push(r->c, out.u.list, l->v[k]);
    return out;
}

static jv binop(jrender *r, const char *op, jv a, jv b) {
    if (a.k == JV_UNDEF) fail_undef(r, a);
    if (b.k == JV_UNDEF) fail_undef(r, b);
    bool ints = (a.k == JV_INT || a.k == JV_BOOL) && (b.k == JV_INT || b.k == JV_BOOL);
    bool nums = jv_is_number(a) && jv_is_number(b);
    int64_t x = as_int(a), y = as_int(b), z = 0;
    switch (op[0]) {
    case '+':
        if (ints) {
            bool o = __builtin_add_overflow(x, y, &z);
            return int_result(r, o, &z);
        }
        if (nums) return jv_float(jv_num(a) + jv_num(b));
        if (a.k == JV_STR && b.k == JV_STR) {
            bool safe = a.safe || b.safe; /* Markup + str escapes the str */
            if (safe) {
                a = jv_html_escape(r->c, a);
                b = jv_html_escape(r->c, b);
            }
            jbuf s = {0};
            jbuf_put(r->c, &s, a.u.s.s, a.u.s.n);
            jbuf_put(r->c, &s, b.u.s.s, b.u.s.n);
            jv res = jv_str(s.p ? s.p : "", s.n);
            res.safe = safe;
            return res;
        }
        if (a.k == JV_LIST && b.k == JV_LIST && a.u.list->tuple == b.u.list->tuple) {
            jv l = jv_newlist(r->c, a.u.list->n + b.u.list->n, a.u.list->tuple);
            for (size_t i = 0; i < a.u.list->n; i++) jlist_push(r->c, l.u.list, a.u.list->v[i]);
            for (size_t i = 0; i < b.u.list->n; i++) jlist_push(r->c, l.u.list, b.u.list->v[i]);
            return l;
        }
        break;
    case '-':
        if (ints) {
            bool o = __builtin_sub_overflow(x, y, &z);
            return int_result(r, o, &z);
        }
        if (nums) return jv_float(jv_num(a) - jv_num(b));
        break;
    case '*':
        if (op[1] == '*') {
            if (ints && y >= 0) {
                int64_t res = 1;
                for (int64_t i = 0; i < y; i++) {
                    if (__builtin_mul_overflow(res, x, &res))
                        jfail(r->c, JINJA_ERR_RENDER, "integer overflow");
                    if (res == 0 || res == 1) break;
                }
                if (x == -1) res = (y % 2) ? -1 : 1;
                return jv_int(res);
            }
            if (nums) return jv_float(pow(jv_num(a), jv_num(b)));
            break;
        }
        if (ints) {
            bool o = __builtin_mul_overflow(x, y, &z);
            return int_result(r, o, &z);
        }
        if (nums) return jv_float(jv_num(a) * jv_num(b));
        if ((a.k == JV_STR || a.k == JV_LIST) && (b.k == JV_INT || b.k == JV_BOOL))
            return repeat(r, a, y);
        if ((b.k == JV_STR || b.k == JV_LIST) && (a.k == JV_INT || a.k == JV_BOOL))
            return repeat(r, b, x);
        break;
    case '/':
        if (!nums) break;
        if (jv_num(b) == 0) jfail(r->c, JINJA_ERR_RENDER, "division by zero");
        if (op[1] == '/') {
            if (ints) {
                if (x == INT64_MIN && y == -1) jfail(r->c, JINJA_ERR_RENDER, "integer overflow");
                int64_t q = x / y;
                if ((x % y != 0) && ((x < 0) != (y < 0))) q--;
                return jv_int(q);
            }
            return jv_float(floor(jv_num(a) / jv_num(b)));
        }
        return jv_float(jv_num(a) / jv_num(b));
    case '%':
        if (a.k == JV_STR) {
            jargs fa = {0};
            if (b.k == JV_LIST && b.u.list->tuple) {
                fa.pos = b.u.list->v;
                fa.npos = b.u.list->n;
            } else {
                fa.pos = &b;
                fa.npos = 1;
            }
            return jinja_printf(r, a, &fa);
        }
        if (!nums) break;
        if (jv_num(b) == 0) jfail(r->c, JINJA_ERR_RENDER, "modulo by zero");
        if (ints) {
            if (y == -1) return jv_int(0);
            int64_t m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) m += y;
            return jv_int(m);
        } else {
            double m = fmod(jv_num(a), jv_num(b));
            if (m != 0 && ((m < 0) != (jv_num(b) < 0))) m += jv_num(b);
            return jv_float(m);
        }
    }
    jfail(r->c, JINJA_ERR_RENDER, "unsupported operand type(s) for %s: '%s' and '%s'", op,
          jv_typename(a), jv_typename(b));
}

static bool contains(jrender *r, jv hay, jv needle) {
    switch (hay.k) {
    case JV_STR:
        if (needle.k == JV_UNDEF) fail_undef(r, needle);
        if (needle.k != JV_STR)
            jfail(r->c, JINJA_ERR_RENDER, "'in <string>' requires string as left operand, not %s",
                  jv_typename(needle));
        if (!needle.u.s.n) return true;
        jctx_work(r->c, JWORK_BYTES(hay.u.s.n));
        return memmem(hay.u.s.s, hay.u.s.n, needle.u.s.s, needle.u.s.n) != NULL;
    case JV_LIST:
        for (size_t i = 0; i < hay.u.list->n; i++)
            if (jv_equal(r->c, hay.u.list->v[i], needle)) return true;
        return false;
    case JV_DICT:
    case JV_NS: {
        jv tmp;
        return jdict_get(hay.u.dict, needle, &tmp);
    }
    case JV_UNDEF: return false;
    default:
        jfail(r->c, JINJA_ERR_RENDER, "argument of type '%s' is not iterable", jv_typename(hay));
    }
}

static bool compare(jrender *r, const char *op, jv a, jv b) {
    if (!strcmp(op, "==")) return jv_equal(r->c, a, b);
    if (!strcmp(op, "!=")) return !jv_equal(r->c, a, b);
    if (!strcmp(op, "in")) return contains(r, b, a);
    if (!strcmp(op, "notin")) return !contains(r, b, a);
    int c = jv_compare(r->c, a, b);
    if (!strcmp(op, "<")) return c < 0;
    if (!strcmp(op, "<=")) return c <= 0;
    if (!strcmp(op, ">")) return c > 0;
    return c >= 0;
}

static int64_t slice_index(jrender *r, jv v, int64_t dflt) {
    if (v.k == JV_NONE || v.k == JV_UNDEF) return dflt;
    if (v.k != JV_INT && v.k != JV_BOOL)
        jfail(r->c, JINJA_ERR_RENDER, "slice indices must be integers or None");
    return as_int(v);
}

static jv do_slice(jrender *r, jv obj, jv start, jv stop, jv step) {
    if (obj.k == JV_UNDEF) fail_undef(r, obj);
    int64_t st = slice_index(r, step, 1);
    if (st == 0) jfail(r->c, JINJA_ERR_RENDER, "slice step cannot be zero");
    bool is_str = obj.k == JV_STR;
    size_t len;
    jlist *chars = NULL;
    if (is_str) {
        chars = jv_iterate(r->c, obj);
        len = chars->n;
    } else if (obj.k == JV_LIST) {
        len = obj.u.list->n;
    } else {
        jfail(r->c, JINJA_ERR_RENDER, "'%s' object is not subscriptable", jv_typename(obj));
    }
    int64_t n = (int64_t)len;
    int64_t lo = st > 0 ? 0 : -1, hi = st > 0 ? n : n - 1;
    int64_t a = slice_index(r, start, st > 0 ? 0 : n - 1);
    int64_t b = slice_index(r, stop, st > 0 ? n : -n - 1);
    if (start.k == JV_INT && a < 0) a += n;
    if (stop.k == JV_INT && b < 0) b += n;
    if (a < lo) a = lo;
    if (a > hi) a = hi;
    if (b < lo) b = lo;
    if (b > hi) b = hi;
    jlist *src = is_str ? chars : obj.u.list;
    jv out = jv_newlist(r->c, 0, !is_str && obj.u.list->tuple);
    for (int64_t i = a; st > 0 ? i < b : i > b; i += st) jlist_push(r->c, out.u.list, src->v[i]);
    if (!is_str) return out;
    jbuf s = {0};
    for (size_t i = 0; i < out.u.list->n; i++)
        jbuf_put(r->c, &s, out.u.list->v[i].u.s.s, out.u.list->v[i].u.s.n);
    return jv_str(s.p ? s.p : "", s.n);
}

static jv eval(jrender *r, const jnode *n, jframe *f) {
    switch (n->k) {
    case N_CONST: return n->val;
    case N_NAME: return lookup(r, f, n->name);
    case N_LIST:
    case N_TUPLE: {
        jv l = jv_newlist(r->c, n->items.n, n->k == N_TUPLE);
        for (size_t i = 0; i < n->items.n; i++)
            jlist_push(r->c, l.u.list, eval(r, n->items.v[i], f));
        return l;
    }
    case N_DICT: {
        jv d = jv_newdict(r->c);
        for (size_t i = 0; i + 1 < n->items.n; i += 2) {
            jv k = eval(r, n->items.v[i], f);
            if (k.k == JV_LIST && !k.u.list->tuple)
                jfail(r->c, JINJA_ERR_RENDER, "unhashable type: 'list'");
            if (k.k == JV_DICT) jfail(r->c, JINJA_ERR_RENDER, "unhashable type: 'dict'");
            jdict_set(r->c, d.u.dict, k, eval(r, n->items.v[i + 1], f));
        }
        return d;
    }
    case N_GETATTR: {
        jv obj = eval(r, n->a, f);
        if (obj.k == JV_UNDEF) fail_undef(r, obj);
        return jinja_getattr(r, obj, n->name);
    }
    case N_GETITEM: {
        jv obj = eval(r, n->a, f);
        if (n->b->k == N_SLICE) {
            const jnode *s = n->b;
            jv none = jv_none();
            return do_slice(r, obj, s->a ? eval(r, s->a, f) : none, s->b ? eval(r, s->b, f) : none,
                            s->c ? eval(r, s->c, f) : none);
        }
        if (obj.k == JV_UNDEF) fail_undef(r, obj);
        return jinja_getitem(r, obj, eval(r, n->b, f));
    }
    case N_CALL: {
        jv fn = eval(r, n->a, f);
        jargs a;
        eval_args(r, n, f, &a);
        jr_step(r);
        return jr_call(r, fn, &a);
    }
    case N_FILTER: {
        jv v = eval(r, n->a, f);
        jargs a;
        eval_args(r, n, f, &a);
        jv out;
        if (!jinja_filter(r, n->name, v, &a, &out))
            jfail(r->c, JINJA_ERR_RENDER, "line %d: No filter named '%s'.", n->line, n->name);
        return out;
    }
    case N_TEST: {
        jv v = eval(r, n->a, f);
        jargs a;
        eval_args(r, n, f, &a);
        bool res;
        if (!jinja_test(r, n->name, v, &a, &res))
            jfail(r->c, JINJA_ERR_RENDER, "line %d: No test named '%s'.", n->line, n->name);
        return jv_bool(n->negate ? !res : res);
    }
    case N_NOT: return jv_bool(!jv_truthy(eval(r, n->a, f)));
    case N_NEG:
    case N_POS: {
        jv v = eval(r, n->a, f);
        if (v.k == JV_UNDEF) fail_undef(r, v);
        if (v.k == JV_FLOAT) return jv_float(n->k == N_NEG ? -v.u.f : v.u.f);
        if (v.k == JV_INT || v.k == JV_BOOL) {
            int64_t x = as_int(v);
            if (n->k == N_NEG && x == INT64_MIN) jfail(r->c, JINJA_ERR_RENDER, "integer overflow");
            return jv_int(n->k == N_NEG ? -x : x);
        }
        jfail(r->c, JINJA_ERR_RENDER, "bad operand type for unary %s: '%s'",
              n->k == N_NEG ? "-" : "+", jv_typename(v));
    }
    case N_BINOP: return binop(r, n->name, eval(r, n->a, f), eval(r, n->b, f));
    case N_AND: {
        jv a = eval(r, n->a, f);
        return jv_truthy(a) ? eval(r, n->b, f) : a;
    }
    case N_OR: {
        jv a = eval(r, n->a, f);
        return jv_truthy(a) ? a : eval(r, n->b, f);
    }
    case N_CONCAT: {
        jbuf s = {0};
        for (size_t i = 0; i < n->items.n; i++) jv_str_to(r->c, &s, eval(r, n->items.v[i], f));
        return jv_str(s.p ? s.p : "", s.n);
    }
    case N_COMPARE: {
        jv a = eval(r, n->items.v[0], f);
        for (size_t i = 1; i < n->items.n; i++) {
            jv b = eval(r, n->items.v[i], f);
            if (!compare(r, n->ops[i - 1], a, b)) return jv_bool(false);
            a = b;
        }
        return jv_bool(true);
    }
    case N_CONDEXPR:
        if (jv_truthy(eval(r, n->a, f))) return eval(r, n->b, f);
        if (n->c) return eval(r, n->c, f);
        return jv_undef(
            "the inline if-expression evaluated to false and no else section was defined.");
    default: jfail(r->c, JINJA_ERR_RENDER, "line %d: not an expression", n->line);
    }
}

/* ---- statements ---- */
static void assign(jrender *r, const jnode *target, jv v, jframe *f) {
    if (target->k == N_NAME) {
        frame_set(r, f, target->name, v);
        return;
    }
    if (target->k == N_GETATTR) {
        jv ns = lookup(r, f, target->a->name);
        if (ns.k != JV_NS)
            jfail(r->c, JINJA_ERR_RENDER,
                  "line %d: Can not assign attribute on non-namespace object", target->line);
        jdict_set(r->c, ns.u.dict, jv_cstr(target->name), v);
        return;
    }
    /* tuple unpacking */
    jlist *items = jv_iterate(r->c, v);
    if (items->n != target->items.n)
        jfail(r->c, JINJA_ERR_RENDER, "%s values to unpack (expected %zu, got %zu)",
              items->n > target->items.n ? "too many" : "not enough", target->items.n, items->n);
    for (size_t i = 0; i < items->n; i++) frame_set(r, f, target->items.v[i]->name, items->v[i]);
}

static jv apply_filter_chain(jrender *r, const jnode *fn, jv v, jframe *f) {
    if (!fn) return v;
    v = apply_filter_chain(r, fn->a, v, f);
    jargs a;
    eval_args(r, fn, f, &a);
    jv out;
    if (!jinja_filter(r, fn->name, v, &a, &out))
        jfail(r->c, JINJA_ERR_RENDER, "line %d: No filter named '%s'.", fn->line, fn->name);
    return out;
}

static int exec_for(jrender *r, const jnode *n, jframe *f, jbuf *out) {
    jv seq = eval(r, n->b, f);
    jlist *all = jv_iterate(r->c, seq);
    jlist *items = all;
    if (n->c) { /* "for x in y if cond": filter first, so loop.length counts what is kept */
        jv kept = jv_newlist(r->c, all->n, false);
        for (size_t i = 0; i < all->n; i++) {
            jr_step(r);
            jframe *tf = new_frame(r, f);
            assign(r, n->a, all->v[i], tf);
            if (jv_truthy(eval(r, n->c, tf))) jlist_push(r->c, kept.u.list, all->v[i]);
        }
        items = kept.u.list;
    }
    if (!items->n) {
        if (n->d) return exec(r, n->d, new_frame(r, f), out);
        return FLOW_NORMAL;
    }
    jloop *lp = jarena_alloc(r->c, sizeof *lp);
    lp->items = items;
    lp->depth = 1;
    jv loopv = {.k = JV_LOOP, .u.loop = lp};
    for (size_t i = 0; i < items->n; i++) {
        jr_step(r);
        lp->i = i;
        jframe *it = new_frame(r, f);
        assign(r, n->a, items->v[i], it);
        frame_set(r, it, "loop", loopv);
        int flow = exec(r, n->items.v[0], it, out);
        if (flow == FLOW_BREAK) break;
    }
    return FLOW_NORMAL;
}

static int exec(jrender *r, const jnode *n, jframe *f, jbuf *out) {
    jr_step(r);
    switch (n->k) {
    case N_BODY:
        for (size_t i = 0; i < n->items.n; i++) {
            int flow = exec(r, n->items.v[i], f, out);
            if (flow != FLOW_NORMAL) return flow;
        }
        return FLOW_NORMAL;
    case N_DATA: jbuf_put(r->c, out, n->val.u.s.s, n->val.u.s.n); return FLOW_NORMAL;
    case N_OUTPUT:
        for (size_t i = 0; i < n->items.n; i++) jv_str_to(r->c, out, eval(r, n->items.v[i], f));
        return FLOW_NORMAL;
    case N_IF:
        if (jv_truthy(eval(r, n->a, f))) return exec(r, n->b, f, out);
        if (n->c) return exec(r, n->c, f, out);
        return FLOW_NORMAL;
    case N_FOR: return exec_for(r, n, f, out);
    case N_SET: assign(r, n->a, eval(r, n->b, f), f); return FLOW_NORMAL;
    case N_SETBLOCK: {
        jbuf b = {.limit = r->lim.max_output};
        exec(r, n->b, f, &b);
        jv v = jv_str(b.p ? b.p : "", b.n);
        assign(r, n->a, apply_filter_chain(r, n->d, v, f), f);
        return FLOW_NORMAL;
    }
    case N_FILTERBLOCK: {
        jbuf b = {.limit = r->lim.max_output};
        exec(r, n->b, f, &b);
        jv v = apply_filter_chain(r, n->d, jv_str(b.p ? b.p : "", b.n), f);
        jv_str_to(r->c, out, v);
        return FLOW_NORMAL;
    }
    case N_MACRO: {
        jfunc *fn = jarena_alloc(r->c, sizeof *fn);
        fn->name = n->name;
        fn->macro = n;
        fn->closure = f;
        frame_set(r, f, n->name, (jv){.k = JV_FUNC, .u.fn = fn});
        return FLOW_NORMAL;
    }
    case N_CALLBLOCK: {
        jfunc *caller = jarena_alloc(r->c, sizeof *caller);
        caller->name = "caller";
        caller->caller_body = n->b;
        caller->caller_params = n->c;
        caller->closure = f;
        jv fn = eval(r, n->a->a, f);
        jargs a;
        eval_args(r, n->a, f, &a);
        jargs a2 = a;
        a2.nkw = a.nkw + 1;
        a2.kwn = jarena_alloc(r->c, a2.nkw * sizeof(char *));
        a2.kwv = jarena_alloc(r->c, a2.nkw * sizeof(jv));
        for (size_t i = 0; i < a.nkw; i++) {
            a2.kwn[i] = a.kwn[i];
            a2.kwv[i] = a.kwv[i];
        }
        a2.kwn[a.nkw] = "caller";
        a2.kwv[a.nkw] = (jv){.k = JV_FUNC, .u.fn = caller};
        if (fn.k == JV_FUNC && fn.u.fn->macro) { /* caller is bound as a variable, not a param */
            jfunc copy = *fn.u.fn;
            jframe *cf = new_frame(r, copy.closure);
            frame_set(r, cf, "caller", a2.kwv[a.nkw]);
            copy.closure = cf;
            jv_str_to(r->c, out, call_macro(r, &copy, &a));
        } else {
            jv_str_to(r->c, out, jr_call(r, fn, &a2));
        }
        return FLOW_NORMAL;
    }
    case N_WITH: {
        jframe *wf = new_frame(r, f);
        for (size_t i = 0; i < n->kwnames.n; i++)
            assign(r, n->kwnames.v[i], eval(r, n->kwvals.v[i], f), wf);
        return exec(r, n->b, wf, out);
    }
    case N_BREAK: return FLOW_BREAK;
    case N_CONTINUE: return FLOW_CONTINUE;
    default: jfail(r->c, JINJA_ERR_RENDER, "line %d: not a statement", n->line);
    }
}

/* ---- entry points ---- */
jinja_limits jinja_default_limits(void) {
    return (jinja_limits){.max_output = (size_t)64 << 20,
                          .max_memory = (size_t)1 << 30,
                          .max_steps = 50000000,
                          .max_depth = 100};
}

static void set_err(char *err, size_t err_len, const char *msg) {
    if (err && err_len) {
        size_t n = strlen(msg);
        if (n >= err_len) n = err_len - 1;
        memcpy(err, msg, n);
        err[n] = 0;
    }
}

jinja_status jinja_parse(const char *src, size_t len, jinja_template **out, char *err,
                         size_t err_len) {
    *out = NULL;
    jinja_template *t = calloc(1, sizeof *t);
    if (!t) {
        set_err(err, err_len, "out of memory");
        return JINJA_ERR_NOMEM;
    }
    t->arena.cap = (size_t)256 << 20;
    jctx *c = calloc(1, sizeof *c);
    if (!c) {
        free(t);
        set_err(err, err_len, "out of memory");
        return JINJA_ERR_NOMEM;
    }
    c->arena = &t->arena;
    if (setjmp(c->jb)) {
        jinja_status st = c->status;
        set_err(err, err_len, c->err);
        jarena_free_all(&t->arena);
        free(t);
        free(c);
        return st == JINJA_ERR_RENDER ? JINJA_ERR_SYNTAX : st;
    }
    jtoks toks = {0};
    jinja_lex(c, src, len, &toks);
    t->root = jinja_parse_tokens(c, &toks);
    free(c);
    *out = t;
    return JINJA_OK;
}

void jinja_free(jinja_template *t) {
    if (!t) return;
    jarena_free_all(&t->arena);
    free(t);
}

jinja_status jinja_render(const jinja_template *t, const json_t *vars, const jinja_limits *lim,
                          char **out, size_t *out_len, char *err, size_t err_len) {
    *out = NULL;
    if (out_len) *out_len = 0;
    jarena *arena = calloc(1, sizeof *arena);
    jctx *c = calloc(1, sizeof *c);
    jrender *r = calloc(1, sizeof *r);
    if (!c || !r || !arena) {
        free(arena);
        free(c);
        free(r);
        set_err(err, err_len, "out of memory");
        return JINJA_ERR_NOMEM;
    }
    r->lim = lim ? *lim : jinja_default_limits();
    arena->cap = r->lim.max_memory;
    c->max_steps = r->lim.max_steps ? r->lim.max_steps : 1;
    c->arena = arena;
    r->c = c;
    if (setjmp(c->jb)) {
        jinja_status st = c->status;
        set_err(err, err_len, c->err);
        jarena_free_all(arena);
        free(arena);
        free(c);
        free(r);
        return st;
    }
    jframe *root = new_frame(r, NULL);
    r->root = root;
    if (vars && json_is_object(vars)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)vars, k, v) {
            frame_set(r, root, jstrndup(c, k, strlen(k)), jv_from_json(c, v));
        }
    }
    jbuf b = {.limit = r->lim.max_output};
    exec(r, t->root, root, &b);
    char *res = malloc(b.n + 1);
    if (!res) jfail(c, JINJA_ERR_NOMEM, "out of memory");
    if (b.n) memcpy(res, b.p, b.n);
    res[b.n] = 0;
    *out = res;
    if (out_len) *out_len = b.n;
    jarena_free_all(arena);
    free(arena);
    free(c);
    free(r);
    return JINJA_OK;
}

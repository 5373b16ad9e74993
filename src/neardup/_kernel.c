/*
 * neardup's compiled fast path: paragraphs of Python strings in, their matching form, word
 * shingle hashes and MinHash signatures out, in one pass over the characters.
 *
 * It computes exactly what the numpy path computes (normalize.normalize_many, then
 * shingles.shingle_paragraphs, then signatures.minhash_sets); tests compare the two on random
 * text. Every hash constant comes from the Python side, so the definitions live in one place.
 *
 * Two modes:
 *   raw         paragraphs straight from the documents. ASCII is normalised here (case,
 *               apostrophes, separators, simple HTML tags); a non-ASCII character contributes
 *               what a table built by the Python side says it contributes in any context.
 *               Anything whose normalisation needs the Python steps (junk blocks, a "(" that
 *               may close an ad call's name, an "&" that may start an entity, URL triggers,
 *               characters outside the table) marks the paragraph "dirty": its outputs are
 *               left empty and the caller normalises it in Python.
 *   normalized  paragraphs already in matching form (the dirty ones, after Python): every
 *               non-ASCII character is a word character, hashed as its UTF-8 bytes.
 *
 * No state survives a call; no Python object is created per paragraph or per token.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_SHINGLE 64 /* a power of two: the ring of recent token hashes is indexed by mask */
#define BLOCK 256
#define MAX_WRAP 100 /* paragraphs.py: lines of hard-wrapped text are at most this long */

#if defined(__has_attribute)
#if __has_attribute(target_clones) && defined(__x86_64__) && defined(__linux__)
#define NEARDUP_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef NEARDUP_CLONES
#define NEARDUP_CLONES
#endif

/* Character classes of ASCII in raw mode. */
enum { C_SEP = 0, C_WORD = 1, C_SKIP = 2, C_MARKUP = 3, C_COLON = 4, C_W = 5 };

static uint8_t ascii_class[128];
static uint8_t ascii_lower[128];

static void init_tables(void) {
    for (int c = 0; c < 128; c++) {
        ascii_class[c] = C_SEP;
        ascii_lower[c] = (uint8_t)c;
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) ascii_class[c] = C_WORD;
        if (c >= 'A' && c <= 'Z') {
            ascii_class[c] = C_WORD;
            ascii_lower[c] = (uint8_t)(c + 32);
        }
    }
    ascii_class['\''] = C_SKIP;
    ascii_class['<'] = C_MARKUP;
    ascii_class['&'] = C_MARKUP;
    ascii_class['('] = C_MARKUP;
    ascii_class[':'] = C_COLON;
    ascii_class['w'] = C_W;
    ascii_class['W'] = C_W;
}

static inline uint64_t fmix64(uint64_t v) {
    v ^= v >> 33;
    v *= 0xFF51AFD7ED558CCDULL;
    v ^= v >> 33;
    v *= 0xC4CEB9FE1A85EC53ULL;
    return v ^ (v >> 33);
}

static inline uint32_t fmix32(uint32_t v) {
    v ^= v >> 16;
    v *= 0x85EBCA6BU;
    v ^= v >> 13;
    v *= 0xC2B2AE35U;
    return v ^ (v >> 16);
}

/* The permutations of a block of (pre-mixed) shingle hashes, folded into one signature row:
 * the hot loop, vectorised by the compiler (AVX2 when the CPU has it). */
NEARDUP_CLONES
static void minhash_block(uint32_t *restrict row, const uint32_t *restrict a, const uint32_t *restrict b,
                          Py_ssize_t num_perm, const uint32_t *restrict mixed, int count) {
    for (int s = 0; s < count; s++) {
        const uint32_t m = mixed[s];
        for (Py_ssize_t k = 0; k < num_perm; k++) {
            uint32_t v = a[k] * m + b[k];
            row[k] = v < row[k] ? v : row[k];
        }
    }
}

typedef struct {
    /* parameters */
    uint64_t prime;          /* odd multiplier of the byte polynomial */
    uint64_t len_salt;
    const uint64_t *position; /* per-position shingle multipliers */
    int shingle_size;
    const uint32_t *a, *b;
    Py_ssize_t num_perm;
    /* raw mode: what each non-ASCII character below table_end contributes to the matching form */
    const int32_t *replace_start;  /* into replace_bytes; -1: the paragraph needs the Python steps */
    const uint8_t *replace_len;
    const uint8_t *replace_bytes;
    Py_ssize_t table_end;
    /* outputs; capacities are checked per paragraph, before it is read */
    uint8_t *form;
    Py_ssize_t form_cap, form_pos, form_end;
    uint32_t *hashes;         /* optional: every shingle hash */
    int64_t *hash_owner;
    Py_ssize_t hashes_cap, hashes_pos;
    /* per paragraph */
    uint64_t ring[MAX_SHINGLE];
    int64_t words;
    int64_t shingles;
    uint32_t mixed[BLOCK];
    int pending;
} State;

static inline void flush(State *st, uint32_t *row) {
    if (st->pending) {
        minhash_block(row, st->a, st->b, st->num_perm, st->mixed, st->pending);
        st->pending = 0;
    }
}

static inline void emit_shingle(State *st, uint32_t *row, int64_t paragraph, int64_t first, int length) {
    uint64_t acc = 0;
    for (int o = 0; o < length; o++) acc += st->ring[(first + o) & (MAX_SHINGLE - 1)] * st->position[o];
    uint64_t mixed = fmix64(acc ^ ((uint64_t)length * st->len_salt));
    uint32_t h = (uint32_t)(mixed >> 32) ^ (uint32_t)mixed;
    if (st->hashes) {  /* past the capacity only counted: the caller retries with room for all */
        if (st->hashes_pos < st->hashes_cap) {
            st->hashes[st->hashes_pos] = h;
            st->hash_owner[st->hashes_pos] = paragraph;
        }
        st->hashes_pos++;
    }
    st->mixed[st->pending++] = fmix32(h);
    st->shingles++;
    if (st->pending == BLOCK) flush(st, row);
}

/* A token of `bytes` bytes whose polynomial is `raw` has ended; returns the paragraph's token count. */
static inline int64_t end_token(State *st, uint32_t *row, int64_t paragraph, uint64_t raw, int64_t bytes,
                                int64_t words) {
    uint64_t token = fmix64(raw ^ ((uint64_t)bytes * st->len_salt));
    int k = st->shingle_size;
    st->ring[words & (MAX_SHINGLE - 1)] = token;
    words++;
    if (words >= k) emit_shingle(st, row, paragraph, words - k, k);
    return words;
}

/* "://", "www." or "WWW." at position i (the URL triggers of the junk finder). */
static inline int url_trigger(int kind, const void *data, Py_ssize_t i, Py_ssize_t end, Py_UCS4 cp) {
    if (cp == ':')
        return i + 2 < end && PyUnicode_READ(kind, data, i + 1) == '/' && PyUnicode_READ(kind, data, i + 2) == '/';
    return i + 3 < end && PyUnicode_READ(kind, data, i + 1) == cp && PyUnicode_READ(kind, data, i + 2) == cp &&
           PyUnicode_READ(kind, data, i + 3) == '.';
}

/* A "(" that may end a junk trigger: ".name(" (a dotted call) or "function(". Looks back over
 * spaces and line breaks (Python turned those into spaces) and an ASCII identifier; a non-ASCII
 * character there may be a word character of the name, so it counts as a trigger too. */
static inline int call_trigger(int kind, const void *data, Py_ssize_t start, Py_ssize_t i) {
    Py_ssize_t j = i - 1;
    while (j >= start) {
        Py_UCS4 c = PyUnicode_READ(kind, data, j);
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        j--;
    }
    Py_ssize_t run_end = j + 1;
    for (; j >= start; j--) {
        Py_UCS4 c = PyUnicode_READ(kind, data, j);
        if (c >= 0x80) return 1;
        if (!(ascii_class[c] == C_WORD || ascii_class[c] == C_W || c == '_' || c == '$')) break;
    }
    Py_ssize_t run_start = j + 1;
    if (run_start == run_end) return 0;
    if (j >= start && PyUnicode_READ(kind, data, j) == '.') return 1;
    static const char function[] = "function";
    if (run_end - run_start < 8) return 0;
    for (int k = 0; k < 8; k++)
        if (PyUnicode_READ(kind, data, run_end - 8 + k) != (Py_UCS4)function[k]) return 0;
    return 1;
}

/* An "&" that may start an HTML entity (the entity pattern: "&" + up to 33 of [A-Za-z0-9#] + ";"). */
static inline int entity_ahead(int kind, const void *data, Py_ssize_t i, Py_ssize_t end) {
    Py_ssize_t k = i + 1;
    while (k < end && k - i <= 40) {
        Py_UCS4 c = PyUnicode_READ(kind, data, k);
        if (c >= 0x80 || !(ascii_class[c] == C_WORD || ascii_class[c] == C_W || c == '#')) break;
        k++;
    }
    return k > i + 1 && k < end && PyUnicode_READ(kind, data, k) == ';';
}

static inline int starts_with_ci(int kind, const void *data, Py_ssize_t i, Py_ssize_t end, const char *word) {
    for (; *word; word++, i++) {
        if (i >= end) return 0;
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c >= 0x80 || ascii_lower[c] != (uint8_t)*word) return 0;
    }
    return 1;
}

/* At a "<": the position of the ">" closing an HTML tag (pattern </?[A-Za-z][^<>\n]{0,500}>),
 * -1 when it is no tag (the "<" is a separator), -2 when the Python steps must decide: a script,
 * style, noscript or comment block (junk blocks), a line break inside, a "(" inside. */
static inline Py_ssize_t tag_end(int kind, const void *data, Py_ssize_t i, Py_ssize_t end) {
    Py_ssize_t k = i + 1;
    if (k < end && PyUnicode_READ(kind, data, k) == '!') return -2;
    if (starts_with_ci(kind, data, k, end, "script") || starts_with_ci(kind, data, k, end, "style") ||
        starts_with_ci(kind, data, k, end, "noscript"))
        return -2;
    if (k < end && PyUnicode_READ(kind, data, k) == '/') k++;
    if (k >= end) return -1;
    Py_UCS4 c = PyUnicode_READ(kind, data, k);
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return -1;
    for (Py_ssize_t m = k + 1; m < end && m <= k + 501; m++) {
        c = PyUnicode_READ(kind, data, m);
        if (c == '>') return m;
        if (c == '<') return -1;
        if (c == '\n' || c == '\r' || c == '(') return -2;
    }
    return -1;
}

/* Append one byte to the current token (and to the matching form). */
#define ADD_BYTE(byte)                                         \
    do {                                                       \
        uint8_t b_ = (uint8_t)(byte);                          \
        if (tbytes == 0 && words > 0) *out++ = ' ';            \
        *out++ = b_;                                           \
        raw += (uint64_t)b_ * power;                           \
        power *= prime;                                        \
        tbytes++;                                              \
    } while (0)

#define END_TOKEN()                                            \
    do {                                                       \
        if (tbytes) {                                          \
            words = end_token(st, row, index, raw, tbytes, words); \
            raw = 0;                                           \
            power = 1;                                         \
            tbytes = 0;                                        \
        }                                                      \
    } while (0)

/* One paragraph, for one string kind (a constant after inlining, so reads are plain loads).
 * Returns 0, or 1 when the paragraph is dirty (raw mode). */
static inline __attribute__((always_inline)) int paragraph_of_kind(
        State *st, const int kind, const void *data, Py_ssize_t start, Py_ssize_t end, int normalized,
        int64_t index, uint32_t *row) {
    const uint64_t prime = st->prime;
    /* restrict: stores of form bytes alias nothing else, so the hot values stay in registers */
    uint8_t *restrict out = st->form + st->form_pos;
    uint64_t raw = 0, power = 1;
    int64_t tbytes = 0, words = 0;
    st->shingles = 0;
    st->pending = 0;
    for (Py_ssize_t i = start; i < end; i++) {
        Py_UCS4 cp = PyUnicode_READ(kind, data, i);
        if (cp < 0x80) {
            int cls = ascii_class[cp];
            if (cls == C_WORD) {
                ADD_BYTE(ascii_lower[cp]);
                continue;
            }
            if (cls == C_W) {
                if (!normalized && url_trigger(kind, data, i, end, cp)) return 1;
                ADD_BYTE(ascii_lower[cp]);
                continue;
            }
            if (cls == C_SKIP) {
                if (normalized) return 1;  /* cannot happen: the matching form has no apostrophes */
                continue;
            }
            if (!normalized) {
                if (cp == '<') {
                    Py_ssize_t close = tag_end(kind, data, i, end);
                    if (close == -2) return 1;
                    if (close >= 0) i = close;  /* a tag: one separator */
                } else if ((cp == '(' && call_trigger(kind, data, start, i)) ||
                           (cp == '&' && entity_ahead(kind, data, i, end)) ||
                           (cls == C_COLON && url_trigger(kind, data, i, end, cp))) {
                    return 1;
                }
            }
            END_TOKEN();
            continue;
        }
        if (normalized) {  /* a word character: its UTF-8 bytes */
            if (cp < 0x800) {
                ADD_BYTE(0xC0 | (cp >> 6));
            } else if (cp < 0x10000) {
                ADD_BYTE(0xE0 | (cp >> 12));
                ADD_BYTE(0x80 | ((cp >> 6) & 0x3F));
            } else {
                ADD_BYTE(0xF0 | (cp >> 18));
                ADD_BYTE(0x80 | ((cp >> 12) & 0x3F));
                ADD_BYTE(0x80 | ((cp >> 6) & 0x3F));
            }
            ADD_BYTE(0x80 | (cp & 0x3F));
            continue;
        }
        /* raw mode: the character's contribution, a separator (" "), nothing, or word bytes */
        if (cp >= (Py_UCS4)st->table_end || st->replace_start[cp] < 0) return 1;
        const uint8_t *piece = st->replace_bytes + st->replace_start[cp];
        for (int r = 0; r < st->replace_len[cp]; r++) {
            if (piece[r] == ' ')
                END_TOKEN();
            else
                ADD_BYTE(piece[r]);
        }
    }
    END_TOKEN();
    st->words = words;
    if (words > 0 && words < st->shingle_size) emit_shingle(st, row, index, 0, (int)words);
    flush(st, row);
    st->form_end = out - st->form;
    if (st->words) *out++ = '\n';  /* a document's non-empty forms, newline-joined, are contiguous */
    st->form_pos = out - st->form;
    return 0;
}

static int paragraph(State *st, int kind, const void *data, Py_ssize_t start, Py_ssize_t end, int normalized,
                     int64_t index, uint32_t *row) {
    switch (kind) {
    case PyUnicode_1BYTE_KIND:
        return paragraph_of_kind(st, PyUnicode_1BYTE_KIND, data, start, end, normalized, index, row);
    case PyUnicode_2BYTE_KIND:
        return paragraph_of_kind(st, PyUnicode_2BYTE_KIND, data, start, end, normalized, index, row);
    default:
        return paragraph_of_kind(st, PyUnicode_4BYTE_KIND, data, start, end, normalized, index, row);
    }
}

static int check_buffer(Py_buffer *view, Py_ssize_t itemsize, Py_ssize_t items, const char *name) {
    if (view->len < itemsize * items) {
        PyErr_Format(PyExc_ValueError, "%s: buffer of %zd bytes, need %zd", name, view->len, itemsize * items);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(sign_doc,
"sign_paragraphs(texts, spans, normalized, shingle_size, prime, len_salt, position, a, b,\n"
"                replace_start, replace_len, replace_bytes, expand,\n"
"                signatures, words, sizes, digests, dirty, form, form_bounds, hashes, hash_owner)\n"
"-> (form_used, hashes_used)\n\n"
"Paragraph i is texts[spans[i, 0]][spans[i, 1]:spans[i, 2]] (int64 spans). Writes row i of\n"
"signatures (uint32, num_perm = len(a)), words[i], sizes[i] (int64), digests[i] (uint64: the\n"
"token hash of the whole matching form, shingles.span_hashes), dirty[i] (uint8), the\n"
"UTF-8 matching form into form (uint8) at form_bounds[i] (int64 start, end; a non-empty form\n"
"is followed by a newline) and, unless\n"
"hashes is None, every shingle hash (uint32) with its paragraph (int64 hash_owner).\n"
"In raw mode, non-ASCII character c contributes replace_bytes[replace_start[c]:][:replace_len[c]]\n"
"(int32, uint8; start -1 or c beyond the table: the paragraph is dirty). expand bounds the\n"
"bytes (and tokens) one character can produce; the form buffer must hold that many per character.\n"
"hashes may be smaller: hashes_used beyond its length means it was too small (call again).");

static PyObject *sign_paragraphs(PyObject *self, PyObject *args) {
    PyObject *texts;
    int normalized, shingle_size;
    unsigned long long prime, len_salt;
    Py_buffer spans = {0}, position = {0}, a = {0}, b = {0}, signatures = {0}, words = {0}, sizes = {0},
              dirty = {0}, form = {0}, bounds = {0}, hashes = {0}, owner = {0}, rstart = {0}, rlen = {0},
              rbytes = {0}, digests = {0};
    Py_ssize_t expand;
    PyObject *hashes_obj, *owner_obj, *result = NULL;
    if (!PyArg_ParseTuple(args, "O!y*piKKy*y*y*y*y*y*nw*w*w*w*w*w*w*OO", &PyList_Type, &texts, &spans,
                          &normalized, &shingle_size, &prime, &len_salt, &position, &a, &b, &rstart, &rlen, &rbytes,
                          &expand, &signatures, &words, &sizes, &digests, &dirty, &form, &bounds, &hashes_obj,
                          &owner_obj))
        return NULL;
    int with_hashes = hashes_obj != Py_None;
    if (with_hashes) {
        if (PyObject_GetBuffer(hashes_obj, &hashes, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) goto done;
        if (PyObject_GetBuffer(owner_obj, &owner, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) goto done;
    }
    Py_ssize_t count = spans.len / (3 * (Py_ssize_t)sizeof(int64_t));
    Py_ssize_t num_perm = a.len / (Py_ssize_t)sizeof(uint32_t);
    if (shingle_size < 1 || shingle_size > MAX_SHINGLE) {
        PyErr_SetString(PyExc_ValueError, "shingle_size must be 1..64");
        goto done;
    }
    if (check_buffer(&position, 8, shingle_size, "position") || check_buffer(&b, 4, num_perm, "b") ||
        check_buffer(&signatures, 4, count * num_perm, "signatures") || check_buffer(&words, 8, count, "words") ||
        check_buffer(&sizes, 8, count, "sizes") || check_buffer(&digests, 8, count, "digests") ||
        check_buffer(&dirty, 1, count, "dirty") ||
        check_buffer(&bounds, 16, count, "form_bounds") ||
        (with_hashes && check_buffer(&owner, 8, hashes.len / 4, "hash_owner")) ||
        check_buffer(&rlen, 1, rstart.len / 4, "replace_len"))
        goto done;
    if (expand < 1) {
        PyErr_SetString(PyExc_ValueError, "expand must be at least 1");
        goto done;
    }
    for (Py_ssize_t c = 0; c < rstart.len / 4; c++) {
        int32_t s = ((const int32_t *)rstart.buf)[c];
        if (s >= 0 && (Py_ssize_t)s + ((const uint8_t *)rlen.buf)[c] > rbytes.len) {
            PyErr_SetString(PyExc_ValueError, "replacement table points outside replace_bytes");
            goto done;
        }
        if (s >= 0 && ((const uint8_t *)rlen.buf)[c] > expand) {
            PyErr_SetString(PyExc_ValueError, "a replacement is longer than expand");
            goto done;
        }
    }

    State st;
    memset(&st, 0, sizeof st);
    st.prime = prime;
    st.len_salt = len_salt;
    st.position = (const uint64_t *)position.buf;
    st.shingle_size = shingle_size;
    st.a = (const uint32_t *)a.buf;
    st.b = (const uint32_t *)b.buf;
    st.num_perm = num_perm;
    st.replace_start = (const int32_t *)rstart.buf;
    st.replace_len = (const uint8_t *)rlen.buf;
    st.replace_bytes = (const uint8_t *)rbytes.buf;
    st.table_end = rstart.len / 4;
    st.form = (uint8_t *)form.buf;
    st.form_cap = form.len;
    if (with_hashes) {
        st.hashes = (uint32_t *)hashes.buf;
        st.hash_owner = (int64_t *)owner.buf;
        st.hashes_cap = hashes.len / 4;
    }
    const int64_t *span = (const int64_t *)spans.buf;
    uint32_t *sig = (uint32_t *)signatures.buf;
    int64_t *word_out = (int64_t *)words.buf, *size_out = (int64_t *)sizes.buf, *bound_out = (int64_t *)bounds.buf;
    uint8_t *dirty_out = (uint8_t *)dirty.buf;
    uint64_t *digest_out = (uint64_t *)digests.buf;
    Py_ssize_t text_count = PyList_GET_SIZE(texts);

    /* Check every paragraph while holding the GIL; the pass over the characters then runs
     * without it (it reads the str buffers in place and calls no Python API), so threads
     * fingerprint batches in parallel. */
    Py_ssize_t form_need = 0, hashes_need = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        int64_t which = span[3 * i], start = span[3 * i + 1], end = span[3 * i + 2];
        if (which < 0 || which >= text_count) {
            PyErr_Format(PyExc_IndexError, "paragraph %zd: text %lld out of range", i, (long long)which);
            goto done;
        }
        PyObject *text = PyList_GET_ITEM(texts, which);
        if (!PyUnicode_Check(text)) {
            PyErr_Format(PyExc_TypeError, "paragraph %zd: text is not a str", i);
            goto done;
        }
        if (start < 0 || end < start || end > PyUnicode_GET_LENGTH(text)) {
            PyErr_Format(PyExc_IndexError, "paragraph %zd: span %lld:%lld out of range", i, (long long)start,
                         (long long)end);
            goto done;
        }
        form_need += (Py_ssize_t)(end - start) * (normalized ? 4 : expand) + 1;
        hashes_need += (Py_ssize_t)(end - start) * (normalized ? 1 : expand);
    }
    (void)hashes_need;
    if (st.form_cap < form_need) {
        PyErr_SetString(PyExc_ValueError, "output buffer too small");
        goto done;
    }

    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++) {
        int64_t which = span[3 * i], start = span[3 * i + 1], end = span[3 * i + 2];
        PyObject *text = PyList_GET_ITEM(texts, which);
        uint32_t *row = sig + i * num_perm;
        for (Py_ssize_t k = 0; k < num_perm; k++) row[k] = 0xFFFFFFFFU;
        Py_ssize_t form_start = st.form_pos, hashes_start = st.hashes_pos;
        int status = paragraph(&st, PyUnicode_KIND(text), PyUnicode_DATA(text), start, end, normalized, i, row);
        if (status == 1) {  /* dirty: undo, leave empty outputs */
            for (Py_ssize_t k = 0; k < num_perm; k++) row[k] = 0xFFFFFFFFU;
            st.form_pos = form_start;
            st.hashes_pos = hashes_start;
            st.words = st.shingles = 0;
        }
        dirty_out[i] = (uint8_t)status;
        digest_out[i] = 0;
        if (!status) {  /* the token hash of the whole matching form (spaces included) */
            uint64_t raw = 0, power = 1;
            for (Py_ssize_t k = form_start; k < st.form_end; k++) {
                raw += (uint64_t)st.form[k] * power;
                power *= st.prime;
            }
            digest_out[i] = fmix64(raw ^ ((uint64_t)(st.form_end - form_start) * st.len_salt));
        }
        word_out[i] = st.words;
        size_out[i] = st.shingles;
        bound_out[2 * i] = form_start;
        bound_out[2 * i + 1] = status ? form_start : st.form_end;
    }
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("nn", st.form_pos, st.hashes_pos);
done:
    PyBuffer_Release(&spans);
    PyBuffer_Release(&position);
    PyBuffer_Release(&a);
    PyBuffer_Release(&b);
    PyBuffer_Release(&signatures);
    PyBuffer_Release(&words);
    PyBuffer_Release(&sizes);
    PyBuffer_Release(&digests);
    PyBuffer_Release(&dirty);
    PyBuffer_Release(&form);
    PyBuffer_Release(&bounds);
    PyBuffer_Release(&rstart);
    PyBuffer_Release(&rlen);
    PyBuffer_Release(&rbytes);
    if (hashes.obj) PyBuffer_Release(&hashes);
    if (owner.obj) PyBuffer_Release(&owner);
    return result;
}

PyDoc_STRVAR(min_rows_doc,
"min_rows(signatures, offsets, out)\n\n"
"Row r of out (uint32, width w) = element-wise minimum of rows offsets[r]:offsets[r + 1] of\n"
"signatures (uint32, width w); an empty range leaves row r as it is.");

static PyObject *min_rows(PyObject *self, PyObject *args) {
    Py_buffer sig = {0}, offsets = {0}, out = {0};
    Py_ssize_t width;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*y*w*n", &sig, &offsets, &out, &width)) return NULL;
    Py_ssize_t groups = offsets.len / 8 - 1, rows = width > 0 ? sig.len / (4 * width) : 0;
    const int64_t *off = (const int64_t *)offsets.buf;
    if (width < 1 || groups < 0 || out.len < groups * width * 4) {
        PyErr_SetString(PyExc_ValueError, "min_rows: bad shapes");
        goto done;
    }
    for (Py_ssize_t g = 0; g < groups; g++) {
        if (off[g] < 0 || off[g + 1] < off[g] || off[g + 1] > rows) {
            PyErr_SetString(PyExc_ValueError, "min_rows: offsets out of range");
            goto done;
        }
        uint32_t *target = (uint32_t *)out.buf + g * width;
        for (int64_t r = off[g]; r < off[g + 1]; r++) {
            const uint32_t *source = (const uint32_t *)sig.buf + r * width;
            for (Py_ssize_t k = 0; k < width; k++) target[k] = source[k] < target[k] ? source[k] : target[k];
        }
    }
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&sig);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&out);
    return result;
}


/* ---- paragraphs: the C twin of paragraphs.split_paragraphs (tests hold the two equal) ---- */

typedef struct {
    Py_ssize_t start, end;           /* the raw line, without its line break */
    Py_ssize_t body_start, body_end; /* from its first to its last non-space character */
} Line;

static inline int is_break(Py_UCS4 c) { return c == '\n' || c == '\r'; }

/* The non-blank lines of text; returns their number, or -1 (memory error). */
static Py_ssize_t find_lines(int kind, const void *data, Py_ssize_t length, Line **out) {
    Py_ssize_t cap = 64, count = 0, i = 0;
    Line *lines = PyMem_Malloc(cap * sizeof(Line));
    if (!lines) return -1;
    while (i < length) {
        Py_ssize_t start = i, first = -1, last = -1;
        for (; i < length; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            if (is_break(c)) break;
            if (!Py_UNICODE_ISSPACE(c)) {
                if (first < 0) first = i;
                last = i;
            }
        }
        if (first >= 0) {
            if (count == cap) {
                cap *= 2;
                Line *grown = PyMem_Realloc(lines, cap * sizeof(Line));
                if (!grown) {
                    PyMem_Free(lines);
                    return -1;
                }
                lines = grown;
            }
            lines[count++] = (Line){start, i, first, last + 1};
        }
        if (i < length && PyUnicode_READ(kind, data, i) == '\r' && i + 1 < length &&
            PyUnicode_READ(kind, data, i + 1) == '\n')
            i++;
        i++;
    }
    *out = lines;
    return count;
}

static int is_terminal(Py_UCS4 c) {
    return c == '.' || c == '!' || c == '?' || c == '"' || c == '\'' || c == ':' || c == 0x201D || c == 0x2019 ||
           c == ')';
}

/* The 90th-percentile line length (as paragraphs.py computes it), or -1 when a line is over max. */
static Py_ssize_t wrap_width(const Line *lines, Py_ssize_t count, Py_ssize_t max) {
    Py_ssize_t histogram[MAX_WRAP + 1] = {0};
    for (Py_ssize_t k = 0; k < count; k++) {
        Py_ssize_t n = lines[k].end - lines[k].start;
        if (n > max) return -1;
        histogram[n]++;
    }
    Py_ssize_t rank = (Py_ssize_t)(0.9 * (double)(count - 1)), seen = 0;
    for (Py_ssize_t n = 0; n <= max; n++) {
        seen += histogram[n];
        if (seen > rank) return n;
    }
    return max;
}

static int hard_wrapped(int kind, const void *data, const Line *lines, Py_ssize_t count, Py_ssize_t *width) {
    if (count < 4) return 0;
    *width = wrap_width(lines, count, MAX_WRAP);
    if (*width < 30 || *width > MAX_WRAP) return 0;
    Py_ssize_t near = 0, unterminated = 0;
    for (Py_ssize_t k = 0; k < count; k++) {
        if ((double)(lines[k].end - lines[k].start) >= 0.7 * (double)*width) near++;
        if (!is_terminal(PyUnicode_READ(kind, data, lines[k].body_end - 1))) unterminated++;
    }
    return (double)near >= 0.6 * (double)count && (double)unterminated >= 0.5 * (double)count;
}

static int blank_between(int kind, const void *data, Py_ssize_t end, Py_ssize_t start) {
    Py_ssize_t breaks = 0;
    for (Py_ssize_t i = end; i < start; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c == '\n' || (c == '\r' && !(i + 1 < start && PyUnicode_READ(kind, data, i + 1) == '\n'))) breaks++;
    }
    return breaks > 1;
}

static int append_span(PyObject *list, Py_ssize_t start, Py_ssize_t end) {
    PyObject *span = Py_BuildValue("(nn)", start, end);
    if (!span) return -1;
    int status = PyList_Append(list, span);
    Py_DECREF(span);
    return status;
}

PyDoc_STRVAR(split_doc,
"split_paragraphs(text) -> list of (start, end)\n\n"
"The paragraphs of text: its non-blank lines, trimmed, or the re-joined paragraphs of\n"
"hard-wrapped text. Exactly paragraphs.split_paragraphs, which documents the rules.");

static PyObject *split_paragraphs(PyObject *self, PyObject *text) {
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "split_paragraphs needs a str");
        return NULL;
    }
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Line *lines = NULL;
    Py_ssize_t count = find_lines(kind, data, PyUnicode_GET_LENGTH(text), &lines);
    if (count < 0) return PyErr_NoMemory();
    PyObject *out = PyList_New(0);
    Py_ssize_t width = 0;
    if (!out) goto fail;
    if (!hard_wrapped(kind, data, lines, count, &width)) {
        for (Py_ssize_t k = 0; k < count; k++)
            if (append_span(out, lines[k].body_start, lines[k].body_end)) goto fail;
    } else {
        Py_ssize_t current_start = -1, current_end = -1, previous_end = 0;
        int previous_short = 1;
        for (Py_ssize_t k = 0; k < count; k++) {
            const Line *line = &lines[k];
            if (current_start < 0 || previous_short || line->body_start > line->start ||
                blank_between(kind, data, previous_end, line->start)) {
                if (current_start >= 0 && append_span(out, current_start, current_end)) goto fail;
                current_start = line->body_start;
            }
            current_end = line->body_end;
            previous_short = (double)(line->end - line->start) < 0.6 * (double)width;
            previous_end = line->end;
        }
        if (current_start >= 0 && append_span(out, current_start, current_end)) goto fail;
    }
    PyMem_Free(lines);
    return out;
fail:
    PyMem_Free(lines);
    Py_XDECREF(out);
    return NULL;
}

/* ---- band tables: the C twin of kernel.sorted_band_table's numpy path ---- */

#define RADIX_BITS 11
#define RADIX (1 << RADIX_BITS)

/* Stable LSD radix sort of 64-bit values on bits [low, 64), 11 bits a pass (small histograms
 * stay in the L1 cache). */
static int radix_sort(uint64_t *values, Py_ssize_t n, int low) {
    uint64_t *buffer = PyMem_RawMalloc((size_t)(n > 0 ? n : 1) * sizeof(uint64_t));
    Py_ssize_t *count = PyMem_RawMalloc(RADIX * sizeof(Py_ssize_t));
    if (!buffer || !count) {
        PyMem_RawFree(buffer);
        PyMem_RawFree(count);
        return -1;
    }
    uint64_t *from = values, *to = buffer;
    for (int shift = low; shift < 64; shift += RADIX_BITS) {
        memset(count, 0, RADIX * sizeof(Py_ssize_t));
        for (Py_ssize_t i = 0; i < n; i++) count[(from[i] >> shift) & (RADIX - 1)]++;
        Py_ssize_t total = 0;
        for (int d = 0; d < RADIX; d++) {
            Py_ssize_t c = count[d];
            count[d] = total;
            total += c;
        }
        for (Py_ssize_t i = 0; i < n; i++) to[count[(from[i] >> shift) & (RADIX - 1)]++] = from[i];
        uint64_t *swap = from;
        from = to;
        to = swap;
    }
    if (from != values) memcpy(values, from, (size_t)n * sizeof(uint64_t));
    PyMem_RawFree(buffer);
    PyMem_RawFree(count);
    return 0;
}

PyDoc_STRVAR(band_table_doc,
"band_table(signatures, width, bands, rows, items, keys_out, items_out)\n\n"
"For n signatures (uint32, width values a row) with items (int64, 0 <= item < 2^31): band b of\n"
"row i hashes its rows values (fmix64 chain, as lsh.band_keys) and folds them to 32 bits (as\n"
"lsh.fold32). Writes every band's (key, item) pairs sorted by key then item, band after band:\n"
"keys_out (uint32, bands * n), items_out (int32, bands * n).");

static PyObject *band_table(PyObject *self, PyObject *args) {
    Py_buffer sig = {0}, items = {0}, keys_out = {0}, items_out = {0};
    Py_ssize_t width, bands, rows;
    PyObject *result = NULL;
    uint64_t *pairs = NULL;
    if (!PyArg_ParseTuple(args, "y*nnny*w*w*", &sig, &width, &bands, &rows, &items, &keys_out, &items_out))
        return NULL;
    Py_ssize_t n = items.len / 8;
    if (width < 1 || bands < 1 || rows < 1 || bands * rows > width || sig.len < n * width * 4 ||
        keys_out.len < bands * n * 4 || items_out.len < bands * n * 4) {
        PyErr_SetString(PyExc_ValueError, "band_table: bad shapes");
        goto done;
    }
    const uint32_t *s = (const uint32_t *)sig.buf;
    const int64_t *item = (const int64_t *)items.buf;
    int ordered = 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (item[i] < 0 || item[i] > 0x7FFFFFFF) {
            PyErr_SetString(PyExc_ValueError, "band_table: items must be in [0, 2^31)");
            goto done;
        }
        if (i && item[i] < item[i - 1]) ordered = 0;
    }
    pairs = PyMem_Malloc((size_t)(n > 0 ? n * bands : 1) * sizeof(uint64_t));
    if (!pairs) {
        PyErr_NoMemory();
        goto done;
    }
    uint32_t *kout = (uint32_t *)keys_out.buf;
    int32_t *iout = (int32_t *)items_out.buf;
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {  /* row by row: each signature is read once */
        const uint32_t *values = s + i * width;
        for (Py_ssize_t b = 0; b < bands; b++) {
            uint64_t acc = 0;
            for (Py_ssize_t j = 0; j < rows; j++) acc = fmix64(acc ^ (uint64_t)values[b * rows + j]) + (uint64_t)(j + 1);
            uint64_t key = ((acc >> 32) ^ acc) & 0xFFFFFFFFULL;
            pairs[b * n + i] = key << 32 | (uint64_t)item[i];
        }
    }
    for (Py_ssize_t b = 0; b < bands && !failed; b++) {
        uint64_t *band = pairs + b * n;
        /* Items already in order: sorting stably on the key alone gives (key, item) order. */
        if (radix_sort(band, n, ordered ? 32 : 0)) {
            failed = 1;
            break;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            kout[b * n + i] = (uint32_t)(band[i] >> 32);
            iout[b * n + i] = (int32_t)(band[i] & 0xFFFFFFFFULL);
        }
    }
    Py_END_ALLOW_THREADS
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    PyMem_Free(pairs);
    PyBuffer_Release(&sig);
    PyBuffer_Release(&items);
    PyBuffer_Release(&keys_out);
    PyBuffer_Release(&items_out);
    return result;
}

/* ---- band look-ups: where each needle's run of equal keys lies in a band table ---- */

/* First index in [lo, hi) whose key is >= needle, starting from a guess: gallop, then bisect. */
#define DEFINE_LOWER_BOUND(NAME, KEY)                                                                        \
    static inline Py_ssize_t NAME(const KEY *keys, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t guess, KEY needle) { \
        if (guess < lo) guess = lo;                                                                          \
        if (guess >= hi) guess = hi - 1;                                                                     \
        Py_ssize_t left, right, step = 1;                                                                    \
        if (keys[guess] < needle) { /* the answer is after guess */                                        \
            left = guess + 1;                                                                                \
            right = left;                                                                                    \
            while (right < hi && keys[right] < needle) {                                                     \
                left = right + 1;                                                                            \
                right += step;                                                                               \
                step *= 2;                                                                                   \
            }                                                                                                \
            if (right > hi) right = hi;                                                                      \
        } else { /* the answer is at or before guess */                                                     \
            right = guess;                                                                                   \
            left = right;                                                                                    \
            while (left > lo && keys[left - 1] >= needle) {                                                  \
                right = left - 1;                                                                            \
                left -= step;                                                                                \
                step *= 2;                                                                                   \
            }                                                                                                \
            if (left < lo) left = lo;                                                                        \
        }                                                                                                    \
        while (left < right) {                                                                               \
            Py_ssize_t mid = left + (right - left) / 2;                                                      \
            if (keys[mid] < needle)                                                                          \
                left = mid + 1;                                                                              \
            else                                                                                             \
                right = mid;                                                                                 \
        }                                                                                                    \
        return left;                                                                                         \
    }

DEFINE_LOWER_BOUND(lower_bound_from, uint64_t)
DEFINE_LOWER_BOUND(lower_bound32_from, uint32_t)

/* The run of keys equal to needle in sorted keys[first:last), searched from a guess. */
#define DEFINE_EQUAL_RUN(NAME, KEY, LOWER, KEY_MAX)                                                         \
    static inline void NAME(const KEY *keys, Py_ssize_t first, Py_ssize_t last, Py_ssize_t guess, KEY needle, \
                            int64_t *lo, int64_t *hi) {                                                      \
        Py_ssize_t start = LOWER(keys, first, last, guess, needle), end = start;                            \
        if (start < last && keys[start] == needle)                                                           \
            end = needle == KEY_MAX ? last : LOWER(keys, start, last, start + 1, (KEY)(needle + 1));         \
        *lo = start;                                                                                         \
        *hi = end;                                                                                           \
    }

DEFINE_EQUAL_RUN(equal_run, uint64_t, lower_bound_from, UINT64_MAX)
DEFINE_EQUAL_RUN(equal_run32, uint32_t, lower_bound32_from, UINT32_MAX)

PyDoc_STRVAR(find_keys_doc,
"find_keys(keys, bands, needles, lo_out, hi_out)\n\n"
"keys: a band table, uint32, bands of equal width one after the other, each sorted. A needle\n"
"(uint64) is band << 32 | key. Writes the run of equal keys keys[lo:hi] of the needle's band\n"
"(hi == lo when absent; both len(keys) for a band the table does not have). The keys are\n"
"hashes, spread evenly over each band: the search starts where the key's value says it should\n"
"be (a few cache misses, against ~25 for bisection of a large table).");

static PyObject *find_keys(PyObject *self, PyObject *args) {
    Py_buffer keys = {0}, needles = {0}, lo_out = {0}, hi_out = {0};
    Py_ssize_t bands;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*ny*w*w*", &keys, &bands, &needles, &lo_out, &hi_out)) return NULL;
    Py_ssize_t n = keys.len / 4, count = needles.len / 8;
    const uint32_t *k = (const uint32_t *)keys.buf;
    const uint64_t *q = (const uint64_t *)needles.buf;
    int64_t *lo = (int64_t *)lo_out.buf, *hi = (int64_t *)hi_out.buf;
    if (bands < 1 || n % bands || lo_out.len < count * 8 || hi_out.len < count * 8) {
        PyErr_SetString(PyExc_ValueError, "find_keys: bad shapes");
        goto done;
    }
    Py_ssize_t width = n / bands;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++) {
        uint64_t band = q[i] >> 32;
        uint32_t needle = (uint32_t)(q[i] & 0xFFFFFFFFULL);
        if ((Py_ssize_t)band >= bands) {  /* a band the table does not have */
            lo[i] = hi[i] = n;
            continue;
        }
        Py_ssize_t first = (Py_ssize_t)band * width, last = first + width;
        if (width == 0) {
            lo[i] = hi[i] = first;
            continue;
        }
        Py_ssize_t guess = first + (Py_ssize_t)(((uint64_t)needle * (uint64_t)width) >> 32);
        equal_run32(k, first, last, guess, needle, &lo[i], &hi[i]);
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&keys);
    PyBuffer_Release(&needles);
    PyBuffer_Release(&lo_out);
    PyBuffer_Release(&hi_out);
    return result;
}

PyDoc_STRVAR(find_sorted_doc,
"find_sorted(keys, needles, lo_out, hi_out)\n\n"
"keys: sorted uint64 hashes (spread evenly over 64 bits). For each uint64 needle, writes the run\n"
"of equal keys keys[lo:hi], as numpy.searchsorted left/right would, searching from where the\n"
"needle's value says it lies.");

static PyObject *find_sorted(PyObject *self, PyObject *args) {
    Py_buffer keys = {0}, needles = {0}, lo_out = {0}, hi_out = {0};
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*y*w*w*", &keys, &needles, &lo_out, &hi_out)) return NULL;
    Py_ssize_t n = keys.len / 8, count = needles.len / 8;
    const uint64_t *k = (const uint64_t *)keys.buf, *q = (const uint64_t *)needles.buf;
    int64_t *lo = (int64_t *)lo_out.buf, *hi = (int64_t *)hi_out.buf;
    if (lo_out.len < count * 8 || hi_out.len < count * 8) {
        PyErr_SetString(PyExc_ValueError, "find_sorted: bad shapes");
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++) {
        if (n == 0) {
            lo[i] = hi[i] = 0;
            continue;
        }
        uint64_t needle = q[i];
        Py_ssize_t guess = n < ((Py_ssize_t)1 << 31) ? (Py_ssize_t)(((needle >> 32) * (uint64_t)n) >> 32) : n / 2;
        equal_run(k, 0, n, guess, needle, &lo[i], &hi[i]);
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&keys);
    PyBuffer_Release(&needles);
    PyBuffer_Release(&lo_out);
    PyBuffer_Release(&hi_out);
    return result;
}

static PyMethodDef methods[] = {
    {"min_rows", min_rows, METH_VARARGS, min_rows_doc},
    {"split_paragraphs", split_paragraphs, METH_O, split_doc},
    {"band_table", band_table, METH_VARARGS, band_table_doc},
    {"find_keys", find_keys, METH_VARARGS, find_keys_doc},
    {"find_sorted", find_sorted, METH_VARARGS, find_sorted_doc},
    {"sign_paragraphs", sign_paragraphs, METH_VARARGS, sign_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "neardup._kernel",
    "Compiled fast path of neardup's fingerprint stage (see kernel.py).", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__kernel(void) {
    init_tables();
    return PyModule_Create(&module);
}

/*
 * neardup's compiled pair stages: band keys, candidate pairs from buckets of equal keys, and the
 * exact verification of candidate pairs from their shingle sequences.
 *
 * The numpy twins live in candidates.py and verify.py; tests hold each pair equal on random
 * input. Every function checks its arguments while holding the GIL, then computes without it
 * (no Python API, raw allocations only), so threads run batches in parallel.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t fmix64(uint64_t v) {
    v ^= v >> 33;
    v *= 0xFF51AFD7ED558CCDULL;
    v ^= v >> 33;
    v *= 0xC4CEB9FE1A85EC53ULL;
    return v ^ (v >> 33);
}

static int need(Py_buffer *view, Py_ssize_t bytes, const char *name) {
    if (view->len < bytes) {
        PyErr_Format(PyExc_ValueError, "%s: buffer of %zd bytes, need %zd", name, view->len, bytes);
        return -1;
    }
    return 0;
}

/* ---- band keys ------------------------------------------------------------------------------ */

PyDoc_STRVAR(band_keys_doc,
"band_keys(signatures, width, bands, rows, out)\n\n"
"64-bit band keys of n signatures (uint32, width values a row): out[i * bands + b] (uint64) is\n"
"the fmix64 chain of band b's rows values (as lsh.band_keys), with the band mixed in, so that\n"
"keys of different bands never meet in one bucket: fmix64(chain + (b + 1) * 0x9E3779B97F4A7C15).");

static PyObject *band_keys(PyObject *self, PyObject *args) {
    Py_buffer sig = {0}, out = {0};
    Py_ssize_t width, bands, rows;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*nnnw*", &sig, &width, &bands, &rows, &out)) return NULL;
    if (width < 1 || bands < 1 || rows < 1 || bands * rows > width) {
        PyErr_SetString(PyExc_ValueError, "band_keys: need bands * rows <= width");
        goto done;
    }
    Py_ssize_t n = sig.len / (4 * width);
    if (need(&out, n * bands * 8, "out")) goto done;
    const uint32_t *s = (const uint32_t *)sig.buf;
    uint64_t *o = (uint64_t *)out.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        const uint32_t *values = s + i * width;
        for (Py_ssize_t b = 0; b < bands; b++) {
            uint64_t acc = 0;
            for (Py_ssize_t j = 0; j < rows; j++) acc = fmix64(acc ^ (uint64_t)values[b * rows + j]) + (uint64_t)(j + 1);
            o[i * bands + b] = fmix64(acc + (uint64_t)(b + 1) * 0x9E3779B97F4A7C15ULL);
        }
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&sig);
    PyBuffer_Release(&out);
    return result;
}

/* ---- candidate pairs from buckets ----------------------------------------------------------- */

/* Buckets are runs of equal high 32 bits in sorted values (key << 32 | doc); a doc is listed once
 * per bucket (the caller removed repeats). A bucket of at most cap docs gives all its pairs; a
 * larger one gives the pairs of its `pivots` best-ranked docs with every other doc (a star), so
 * that one very common key cannot make the work quadratic. */

static inline Py_ssize_t bucket_end(const uint64_t *v, Py_ssize_t start, Py_ssize_t n) {
    uint64_t key = v[start] >> 32;
    Py_ssize_t end = start + 1;
    while (end < n && (v[end] >> 32) == key) end++;
    return end;
}

static inline int64_t pairs_of(Py_ssize_t size, Py_ssize_t cap, Py_ssize_t pivots) {
    if (size < 2) return 0;
    if (size <= cap) return (int64_t)size * (size - 1) / 2;
    Py_ssize_t p = pivots < size ? pivots : size;
    return (int64_t)p * (size - p) + (int64_t)p * (p - 1) / 2;
}

static inline uint64_t pair_key(uint32_t a, uint32_t b) {
    return a < b ? ((uint64_t)a << 32 | b) : ((uint64_t)b << 32 | a);
}

PyDoc_STRVAR(bucket_pairs_doc,
"bucket_pairs(values, rank, cap, pivots, out) -> (pairs, large_buckets, largest)\n\n"
"values: sorted uint64 (key << 32 | doc), a doc at most once per key. rank: uint32 per doc (lower\n"
"is preferred, distinct). Writes the pairs of every bucket (see the comment above) as uint64\n"
"(low doc << 32 | high doc) into out, or only counts them when out is None. Returns the number\n"
"of pairs, of buckets larger than cap, and the size of the largest bucket.");

static PyObject *bucket_pairs(PyObject *self, PyObject *args) {
    Py_buffer values = {0}, rank = {0}, out = {0};
    Py_ssize_t cap, pivots;
    PyObject *out_obj, *result = NULL;
    uint32_t *best = NULL;
    if (!PyArg_ParseTuple(args, "y*y*nnO", &values, &rank, &cap, &pivots, &out_obj)) return NULL;
    int writing = out_obj != Py_None;
    if (writing && PyObject_GetBuffer(out_obj, &out, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0) goto done;
    if (cap < 2 || pivots < 1) {
        PyErr_SetString(PyExc_ValueError, "bucket_pairs: need cap >= 2 and pivots >= 1");
        goto done;
    }
    Py_ssize_t n = values.len / 8, docs = rank.len / 4;
    const uint64_t *v = (const uint64_t *)values.buf;
    const uint32_t *r = (const uint32_t *)rank.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if ((Py_ssize_t)(v[i] & 0xFFFFFFFFULL) >= docs) {
            PyErr_SetString(PyExc_ValueError, "bucket_pairs: a doc has no rank");
            goto done;
        }
        if (i && v[i] <= v[i - 1]) {
            PyErr_SetString(PyExc_ValueError, "bucket_pairs: values must be sorted and distinct");
            goto done;
        }
    }
    int64_t total = 0, large = 0, largest = 0;
    for (Py_ssize_t start = 0; start < n;) {
        Py_ssize_t end = bucket_end(v, start, n);
        total += pairs_of(end - start, cap, pivots);
        if (end - start > cap) large++;
        if (end - start > largest) largest = end - start;
        start = end;
    }
    if (writing && need(&out, total * 8, "out")) goto done;
    best = PyMem_RawMalloc((size_t)(pivots + 1) * sizeof(uint32_t));
    if (!best) {
        PyErr_NoMemory();
        goto done;
    }
    if (writing) {
        uint64_t *o = (uint64_t *)out.buf;
        Py_BEGIN_ALLOW_THREADS
        int64_t w = 0;
        for (Py_ssize_t start = 0; start < n;) {
            Py_ssize_t end = bucket_end(v, start, n), size = end - start;
            if (size >= 2 && size <= cap) {
                for (Py_ssize_t i = start; i < end; i++)
                    for (Py_ssize_t j = i + 1; j < end; j++)
                        o[w++] = pair_key((uint32_t)v[i], (uint32_t)v[j]);
            } else if (size > cap) {
                /* the pivots: the `pivots` docs of lowest rank, by insertion into a short list */
                Py_ssize_t kept = 0;
                for (Py_ssize_t i = start; i < end; i++) {
                    uint32_t doc = (uint32_t)v[i];
                    Py_ssize_t at = kept;
                    while (at > 0 && r[best[at - 1]] > r[doc]) at--;
                    if (at >= pivots) continue;
                    Py_ssize_t last = kept < pivots ? kept : pivots - 1;
                    for (Py_ssize_t m = last; m > at; m--) best[m] = best[m - 1];
                    best[at] = doc;
                    if (kept < pivots) kept++;
                }
                for (Py_ssize_t p = 0; p < kept; p++)
                    for (Py_ssize_t q = p + 1; q < kept; q++) o[w++] = pair_key(best[p], best[q]);
                for (Py_ssize_t i = start; i < end; i++) {
                    uint32_t doc = (uint32_t)v[i];
                    int pivot = 0;
                    for (Py_ssize_t p = 0; p < kept; p++) pivot |= best[p] == doc;
                    if (pivot) continue;
                    for (Py_ssize_t p = 0; p < kept; p++) o[w++] = pair_key(best[p], doc);
                }
            }
            start = end;
        }
        Py_END_ALLOW_THREADS
    }
    result = Py_BuildValue("LLL", (long long)total, (long long)large, (long long)largest);
done:
    PyMem_RawFree(best);
    PyBuffer_Release(&values);
    PyBuffer_Release(&rank);
    if (out.obj) PyBuffer_Release(&out);
    return result;
}

/* ---- exact verification of pairs ------------------------------------------------------------ */

/* Stable LSD radix sort of 64-bit values on bits [low, 64), 8 bits a pass. */
static void radix64(uint64_t *values, uint64_t *buffer, Py_ssize_t n, int low) {
    Py_ssize_t count[256];
    uint64_t *from = values, *to = buffer;
    for (int shift = low; shift < 64; shift += 8) {
        memset(count, 0, sizeof count);
        for (Py_ssize_t i = 0; i < n; i++) count[(from[i] >> shift) & 0xFF]++;
        Py_ssize_t total = 0;
        for (int d = 0; d < 256; d++) {
            Py_ssize_t c = count[d];
            count[d] = total;
            total += c;
        }
        for (Py_ssize_t i = 0; i < n; i++) to[count[(from[i] >> shift) & 0xFF]++] = from[i];
        uint64_t *swap = from;
        from = to;
        to = swap;
    }
    if (from != values) memcpy(values, from, (size_t)n * sizeof(uint64_t));
}

static void insertion64(uint64_t *values, Py_ssize_t n) {
    for (Py_ssize_t i = 1; i < n; i++) {
        uint64_t x = values[i];
        Py_ssize_t j = i;
        while (j > 0 && values[j - 1] > x) {
            values[j] = values[j - 1];
            j--;
        }
        values[j] = x;
    }
}

/* One document's distinct shingles, sorted, and for each occurrence its index among them. */
typedef struct {
    uint32_t *unique;   /* distinct hashes, ascending */
    uint32_t *slot;     /* per occurrence (in sequence order): index into unique */
    Py_ssize_t count;   /* distinct hashes */
    int ready;
} Distinct;

static int prepare(Distinct *d, const uint32_t *hashes, Py_ssize_t n, uint64_t *scratch, uint64_t *buffer,
                   uint32_t *unique, uint32_t *slot) {
    for (Py_ssize_t i = 0; i < n; i++) scratch[i] = (uint64_t)hashes[i] << 32 | (uint64_t)i;
    if (n <= 48)
        insertion64(scratch, n);
    else {
        /* the positions (low 32 bits) are already ascending: sort stably on the hash alone */
        radix64(scratch, buffer, n, 32);
    }
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t h = (uint32_t)(scratch[i] >> 32);
        if (count == 0 || unique[count - 1] != h) unique[count++] = h;
        slot[(uint32_t)scratch[i]] = (uint32_t)(count - 1);
    }
    d->unique = unique;
    d->slot = slot;
    d->count = count;
    d->ready = 1;
    return 0;
}

/* Which distinct hashes of a are in b (found_a) and of b in a (found_b); returns the shared count. */
static Py_ssize_t merge(const Distinct *a, const Distinct *b, uint8_t *found_a, uint8_t *found_b) {
    Py_ssize_t i = 0, j = 0, shared = 0;
    memset(found_a, 0, (size_t)a->count);
    memset(found_b, 0, (size_t)b->count);
    while (i < a->count && j < b->count) {
        if (a->unique[i] < b->unique[j])
            i++;
        else if (a->unique[i] > b->unique[j])
            j++;
        else {
            found_a[i++] = 1;
            found_b[j++] = 1;
            shared++;
        }
    }
    return shared;
}

typedef struct {
    const uint32_t *hashes;
    const int64_t *para_offsets; /* into hashes, paragraphs + 1 */
    const int64_t *para_words;
    const double *para_weights;
    const int64_t *para_holders; /* documents known to hold the paragraph's matching form */
    const int64_t *doc_offsets;  /* into paragraphs, docs + 1 */
    int shingle_size;
    int64_t story_words;         /* paragraphs this long carry a story of their own */
    int relative;                /* furniture: held more widely than the story (1), or held at all (0) */
} Columns;

/* Words of paragraph p lying in a shingle the other document holds (a paragraph shorter than the
 * shingle size is one shingle of all its words); *missing counts its shingles the other lacks. */
static int64_t covered_words(const Columns *c, const Distinct *d, const uint8_t *found, int64_t first, int64_t p,
                             int64_t *missing) {
    const int k = c->shingle_size;
    int64_t s0 = c->para_offsets[p], s1 = c->para_offsets[p + 1], words = c->para_words[p];
    int64_t last_end = 0, here = 0;
    *missing = 0;
    for (int64_t s = s0; s < s1; s++) {
        if (!found[d->slot[s - first]]) {
            (*missing)++;
            continue;
        }
        int64_t start = s - s0, end = words >= k ? start + k : words;
        if (start < last_end) start = last_end;
        if (end > start) here += end - start;
        if (end > last_end) last_end = end;
    }
    return here;
}

/* Covered words of one document, weighted by paragraph (found) and not (covered), and their
 * totals, given which of its distinct shingles the other document holds. Then its furniture and
 * its orphans. A paragraph is furniture when more documents hold it (para_holders) than hold any
 * paragraph the other mostly covers (with c->relative: an outlet's footer, carried by its pages
 * of other stories, not a paragraph of the story that other copies carry too), or, without,
 * when any holds it. out[4], out[5]: the words and shingles the other leaves uncovered in
 * furniture (out[7]: those words weighted); out[6]: the uncovered words of paragraphs of at
 * least story_words words, not furniture, that the other holds less than half of (text that
 * removing this document would lose); out[8]: the uncovered words, weighted, of paragraphs no
 * other document holds or shorter than story_words, furniture aside (its additions — an edit, a
 * dateline, an "ALSO READ" line: what makes it no fuller a version of the story). */
static void side(const Columns *c, Py_ssize_t doc, const Distinct *d, const uint8_t *found, double *out) {
    double found_w = 0, total_w = 0, covered = 0, tokens = 0, loose_words = 0, loose_shingles = 0, orphan = 0,
           loose_w = 0, own_w = 0;
    int64_t first = c->para_offsets[c->doc_offsets[doc]], missing = 0, story_holders = c->relative ? 1 : 0;
    if (c->relative)
        for (int64_t p = c->doc_offsets[doc]; p < c->doc_offsets[doc + 1]; p++) {
            int64_t here = covered_words(c, d, found, first, p, &missing);
            if (here > 0 && 2 * here >= c->para_words[p] && c->para_holders[p] > story_holders)
                story_holders = c->para_holders[p];
        }
    for (int64_t p = c->doc_offsets[doc]; p < c->doc_offsets[doc + 1]; p++) {
        int64_t words = c->para_words[p], here = covered_words(c, d, found, first, p, &missing);
        double w = c->para_weights[p];
        tokens += (double)words;
        covered += (double)here;
        total_w += w * (double)words;
        found_w += w * (double)here;
        if (c->para_holders[p] > story_holders) {
            loose_words += (double)(words - here);
            loose_shingles += (double)missing;
            loose_w += w * (double)(words - here);
        } else if (words >= c->story_words && 2 * here < words) {
            orphan += (double)(words - here);
        }
        /* an addition, unless it is furniture (already left out once) */
        if (c->para_holders[p] <= story_holders && (c->para_holders[p] <= 1 || words < c->story_words))
            own_w += w * (double)(words - here);
    }
    out[0] = found_w;
    out[1] = total_w;
    out[2] = covered;
    out[3] = tokens;
    out[4] = loose_words;
    out[5] = loose_shingles;
    out[6] = orphan;
    out[7] = loose_w;
    out[8] = own_w;
}

#define VERIFY_COLUMNS 21

PyDoc_STRVAR(verify_pairs_doc,
"verify_pairs(hashes, para_offsets, para_words, para_weights, para_holders, doc_offsets, shingle_size,\n"
"             story_words, relative, left, right, out)\n\n"
"Exact overlap of document pairs from their shingle sequences (records.ShingleColumns). For pair i\n"
"(left[i], right[i], int64 document indices) writes row i of out (float64, 21 columns): shared\n"
"distinct shingles, distinct shingles of left, of right; left's words covered by a shingle right\n"
"holds, weighted by paragraph, and left's weighted words; the same two for right; left's covered\n"
"words and words, unweighted; the same two for right; then for left and for right: the words and\n"
"the shingles left uncovered in furniture (para_holders, int64: with relative, held by more\n"
"documents than any paragraph the other covers; else held at all), the uncovered words of\n"
"paragraphs of >= story_words words that are not furniture and held less than half, the first\n"
"of these weighted, and the uncovered words, weighted, of paragraphs that are not furniture and\n"
"that no other document holds or are shorter than story_words.\n"
"match.scores documents the measures.");

static PyObject *verify_pairs(PyObject *self, PyObject *args) {
    Py_buffer hashes = {0}, para_offsets = {0}, para_words = {0}, para_weights = {0}, para_holders = {0},
              doc_offsets = {0}, left = {0}, right = {0}, out = {0};
    int shingle_size, relative;
    long long story_words;
    PyObject *result = NULL;
    Distinct *distinct = NULL;
    uint64_t *scratch = NULL, *buffer = NULL;
    uint32_t *unique = NULL, *slot = NULL;
    uint8_t *found_a = NULL, *found_b = NULL;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*iLpy*y*w*", &hashes, &para_offsets, &para_words, &para_weights,
                          &para_holders, &doc_offsets, &shingle_size, &story_words, &relative, &left, &right, &out))
        return NULL;
    Py_ssize_t shingles = hashes.len / 4, paragraphs = para_offsets.len / 8 - 1, docs = doc_offsets.len / 8 - 1;
    Py_ssize_t pairs = left.len / 8;
    const int64_t *po = (const int64_t *)para_offsets.buf, *dof = (const int64_t *)doc_offsets.buf;
    const int64_t *l = (const int64_t *)left.buf, *r = (const int64_t *)right.buf;
    if (paragraphs < 0 || docs < 0 || shingle_size < 1 || need(&para_words, paragraphs * 8, "para_words") ||
        need(&para_weights, paragraphs * 8, "para_weights") || need(&para_holders, paragraphs * 8, "para_holders") ||
        need(&right, pairs * 8, "right") ||
        need(&out, pairs * VERIFY_COLUMNS * 8, "out"))
        goto done;
    if (po[0] != 0 || po[paragraphs] > shingles || dof[0] != 0 || dof[docs] > paragraphs) {
        PyErr_SetString(PyExc_ValueError, "verify_pairs: offsets out of range");
        goto done;
    }
    for (Py_ssize_t p = 0; p < paragraphs; p++)
        if (po[p + 1] < po[p]) {
            PyErr_SetString(PyExc_ValueError, "verify_pairs: paragraph offsets must not decrease");
            goto done;
        }
    Py_ssize_t longest = 0;
    for (Py_ssize_t d = 0; d < docs; d++) {
        if (dof[d + 1] < dof[d]) {
            PyErr_SetString(PyExc_ValueError, "verify_pairs: document offsets must not decrease");
            goto done;
        }
        Py_ssize_t n = po[dof[d + 1]] - po[dof[d]];
        if (n > longest) longest = n;
        if (n >= ((Py_ssize_t)1 << 32)) {
            PyErr_SetString(PyExc_ValueError, "verify_pairs: a document has 2^32 shingles or more");
            goto done;
        }
    }
    for (Py_ssize_t i = 0; i < pairs; i++)
        if (l[i] < 0 || l[i] >= docs || r[i] < 0 || r[i] >= docs) {
            PyErr_SetString(PyExc_IndexError, "verify_pairs: a pair names a document out of range");
            goto done;
        }
    distinct = PyMem_RawCalloc((size_t)(docs > 0 ? docs : 1), sizeof(Distinct));
    Py_ssize_t total = po[paragraphs] > 0 ? po[paragraphs] : 1, scratch_n = longest > 0 ? longest : 1;
    unique = PyMem_RawMalloc((size_t)total * sizeof(uint32_t));
    slot = PyMem_RawMalloc((size_t)total * sizeof(uint32_t));
    scratch = PyMem_RawMalloc((size_t)scratch_n * sizeof(uint64_t));
    buffer = PyMem_RawMalloc((size_t)scratch_n * sizeof(uint64_t));
    found_a = PyMem_RawMalloc((size_t)scratch_n);
    found_b = PyMem_RawMalloc((size_t)scratch_n);
    if (!distinct || !unique || !slot || !scratch || !buffer || !found_a || !found_b) {
        PyErr_NoMemory();
        goto done;
    }
    Columns c = {(const uint32_t *)hashes.buf, po, (const int64_t *)para_words.buf,
                 (const double *)para_weights.buf, (const int64_t *)para_holders.buf, dof, shingle_size,
                 (int64_t)story_words, relative};
    double *o = (double *)out.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < pairs; i++) {
        Py_ssize_t docs2[2] = {l[i], r[i]};
        for (int s = 0; s < 2; s++) {
            Py_ssize_t d = docs2[s];
            if (distinct[d].ready) continue;
            int64_t first = po[dof[d]], n = po[dof[d + 1]] - first;
            prepare(&distinct[d], c.hashes + first, n, scratch, buffer, unique + first, slot + first);
        }
        const Distinct *a = &distinct[l[i]], *b = &distinct[r[i]];
        double *row = o + i * VERIFY_COLUMNS;
        row[0] = (double)merge(a, b, found_a, found_b);
        row[1] = (double)a->count;
        row[2] = (double)b->count;
        double sa[9], sb[9];
        side(&c, l[i], a, found_a, sa);
        side(&c, r[i], b, found_b, sb);
        row[3] = sa[0];
        row[4] = sa[1];
        row[5] = sb[0];
        row[6] = sb[1];
        row[7] = sa[2];
        row[8] = sa[3];
        row[9] = sb[2];
        row[10] = sb[3];
        for (int k = 0; k < 5; k++) {
            row[11 + k] = sa[4 + k];
            row[16 + k] = sb[4 + k];
        }
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyMem_RawFree(distinct);
    PyMem_RawFree(unique);
    PyMem_RawFree(slot);
    PyMem_RawFree(scratch);
    PyMem_RawFree(buffer);
    PyMem_RawFree(found_a);
    PyMem_RawFree(found_b);
    PyBuffer_Release(&hashes);
    PyBuffer_Release(&para_offsets);
    PyBuffer_Release(&para_words);
    PyBuffer_Release(&para_weights);
    PyBuffer_Release(&para_holders);
    PyBuffer_Release(&doc_offsets);
    PyBuffer_Release(&left);
    PyBuffer_Release(&right);
    PyBuffer_Release(&out);
    return result;
}


/* ---- paragraph document frequencies and weights ------------------------------------------- */

static void sort_u64(uint64_t *values, uint64_t *buffer, Py_ssize_t n) {
    if (n <= 48)
        insertion64(values, n);
    else
        radix64(values, buffer, n, 0);
}

static Py_ssize_t lower_u64(const uint64_t *keys, Py_ssize_t n, uint64_t needle) {
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (keys[mid] < needle)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static Py_ssize_t upper_u64(const uint64_t *keys, Py_ssize_t n, uint64_t needle) {
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (keys[mid] <= needle)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Documents with more paragraphs than this find their distinct digests by sorting a copy;
   smaller ones compare each paragraph with the earlier ones (cheaper for a few). */
#define FEW_PARAGRAPHS 32

PyDoc_STRVAR(frequencies_doc,
"document_frequencies(digests, doc_offsets, out)\n\n"
"For every paragraph (uint64 digests; document d holds paragraphs doc_offsets[d]:doc_offsets[d + 1]),\n"
"writes into out (int64) how many distinct documents hold a paragraph with its digest.");

static PyObject *document_frequencies(PyObject *self, PyObject *args) {
    Py_buffer digests = {0}, offsets = {0}, out = {0};
    PyObject *result = NULL;
    uint64_t *firsts = NULL, *buffer = NULL, *own = NULL, *own_buffer = NULL;
    if (!PyArg_ParseTuple(args, "y*y*w*", &digests, &offsets, &out)) return NULL;
    Py_ssize_t n = digests.len / 8, docs = offsets.len / 8 - 1;
    const uint64_t *d = (const uint64_t *)digests.buf;
    const int64_t *off = (const int64_t *)offsets.buf;
    if (docs < 0 || need(&out, n * 8, "out")) goto done;
    if (off[0] != 0 || off[docs] != n) {
        PyErr_SetString(PyExc_ValueError, "document_frequencies: offsets do not cover the digests");
        goto done;
    }
    Py_ssize_t widest = 0;
    for (Py_ssize_t k = 0; k < docs; k++) {
        if (off[k + 1] < off[k]) {
            PyErr_SetString(PyExc_ValueError, "document_frequencies: offsets must not decrease");
            goto done;
        }
        if (off[k + 1] - off[k] > widest) widest = (Py_ssize_t)(off[k + 1] - off[k]);
    }
    firsts = PyMem_RawMalloc((size_t)(n > 0 ? n : 1) * sizeof(uint64_t));
    buffer = PyMem_RawMalloc((size_t)(n > 0 ? n : 1) * sizeof(uint64_t));
    if (widest > FEW_PARAGRAPHS) {
        own = PyMem_RawMalloc((size_t)widest * sizeof(uint64_t));
        own_buffer = PyMem_RawMalloc((size_t)widest * sizeof(uint64_t));
    }
    if (!firsts || !buffer || (widest > FEW_PARAGRAPHS && (!own || !own_buffer))) {
        PyErr_NoMemory();
        goto done;
    }
    int64_t *o = (int64_t *)out.buf;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t count = 0;
    for (Py_ssize_t k = 0; k < docs; k++) {  /* each document's distinct digests, once */
        Py_ssize_t m = (Py_ssize_t)(off[k + 1] - off[k]);
        if (m > FEW_PARAGRAPHS) {
            memcpy(own, d + off[k], (size_t)m * sizeof(uint64_t));
            sort_u64(own, own_buffer, m);
            for (Py_ssize_t i = 0; i < m; i++)
                if (i == 0 || own[i] != own[i - 1]) firsts[count++] = own[i];
            continue;
        }
        for (int64_t p = off[k]; p < off[k + 1]; p++) {
            int seen = 0;
            for (int64_t q = off[k]; q < p && !seen; q++) seen = d[q] == d[p];
            if (!seen) firsts[count++] = d[p];
        }
    }
    sort_u64(firsts, buffer, count);
    for (Py_ssize_t p = 0; p < n; p++)  /* two binary searches: a footer held by many costs log, not df */
        o[p] = (int64_t)(upper_u64(firsts, count, d[p]) - lower_u64(firsts, count, d[p]));
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyMem_RawFree(firsts);
    PyMem_RawFree(buffer);
    PyMem_RawFree(own);
    PyMem_RawFree(own_buffer);
    PyBuffer_Release(&digests);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&out);
    return result;
}

static void sort_double(double *values, Py_ssize_t n) {
    for (Py_ssize_t i = 1; i < n; i++) {
        double x = values[i];
        Py_ssize_t j = i;
        while (j > 0 && values[j - 1] > x) {
            values[j] = values[j - 1];
            j--;
        }
        values[j] = x;
    }
}

PyDoc_STRVAR(weights_doc,
"paragraph_weights(frequencies, words, doc_offsets, min_words, min_df, ratio, out)\n\n"
"The weight of every paragraph in containment (boilerplate.paragraph_weights documents the rule):\n"
"min(1, limit / df)^2, limit = max(min_df, ratio * median df of the document's other body paragraphs),\n"
"0 for a short line unless the document has no body paragraph. float64 frequencies, int64 words.");

static PyObject *paragraph_weights(PyObject *self, PyObject *args) {
    Py_buffer freq = {0}, words = {0}, offsets = {0}, out = {0};
    long long min_words;
    double min_df, ratio;
    PyObject *result = NULL;
    double *pool = NULL;
    if (!PyArg_ParseTuple(args, "y*y*y*Lddw*", &freq, &words, &offsets, &min_words, &min_df, &ratio, &out))
        return NULL;
    Py_ssize_t n = freq.len / 8, docs = offsets.len / 8 - 1;
    const double *f = (const double *)freq.buf;
    const int64_t *w = (const int64_t *)words.buf, *off = (const int64_t *)offsets.buf;
    if (docs < 0 || need(&words, n * 8, "words") || need(&out, n * 8, "out")) goto done;
    Py_ssize_t longest = 0;
    if (off[0] != 0 || off[docs] != n) {
        PyErr_SetString(PyExc_ValueError, "paragraph_weights: offsets do not cover the paragraphs");
        goto done;
    }
    for (Py_ssize_t k = 0; k < docs; k++) {
        if (off[k + 1] < off[k]) {
            PyErr_SetString(PyExc_ValueError, "paragraph_weights: offsets must not decrease");
            goto done;
        }
        if (off[k + 1] - off[k] > longest) longest = off[k + 1] - off[k];
    }
    pool = PyMem_RawMalloc((size_t)(longest > 0 ? longest : 1) * sizeof(double));
    if (!pool) {
        PyErr_NoMemory();
        goto done;
    }
    double *o = (double *)out.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t k = 0; k < docs; k++) {
        Py_ssize_t m = 0;
        for (int64_t p = off[k]; p < off[k + 1]; p++)
            if (w[p] >= min_words) pool[m++] = f[p];
        sort_double(pool, m);
        for (int64_t p = off[k]; p < off[k + 1]; p++) {
            int body = w[p] >= min_words;
            /* the median of the pool leaving this paragraph's own value out when it is in the pool */
            Py_ssize_t remaining = body ? m - 1 : m, skip = -1;
            if (body) {
                Py_ssize_t lo = 0, hi = m;  /* first position of its value: which copy is left out does not matter */
                while (lo < hi) {
                    Py_ssize_t mid = lo + (hi - lo) / 2;
                    if (pool[mid] < f[p]) lo = mid + 1; else hi = mid;
                }
                skip = lo;
            }
            double typical = 0;
            if (remaining > 0) {
                Py_ssize_t a = (remaining - 1) / 2, b = remaining / 2;
                if (skip >= 0 && a >= skip) a++;
                if (skip >= 0 && b >= skip) b++;
                typical = (pool[a] + pool[b]) / 2.0;
            }
            double limit = ratio * typical > min_df ? ratio * typical : min_df;
            double df = f[p] > 1.0 ? f[p] : 1.0;
            double share = limit / df < 1.0 ? limit / df : 1.0;
            o[p] = (body || m == 0) ? share * share : 0.0;
        }
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyMem_RawFree(pool);
    PyBuffer_Release(&freq);
    PyBuffer_Release(&words);
    PyBuffer_Release(&offsets);
    PyBuffer_Release(&out);
    return result;
}

/* ---- figure keys ---------------------------------------------------------------------------- */

/* Character classes of text.figures (its flags table covers the Basic Multilingual Plane; a code
 * point beyond it is a letter and nothing else). */
#define F_DIGIT 1
#define F_INNER 2
#define F_SIGN 4
#define F_ALLOWED 8
#define F_LETTER 16
#define FIG_MIX 0x9E3779B97F4A7C15ULL

static inline uint8_t fig_class(const uint8_t *flags, uint32_t c) { return c < 0x10000 ? flags[c] : F_LETTER; }

/* The key of one paragraph (text.figures.figure_keys documents it; the numpy path there computes
 * the same): letters hashed in order (high half), figures' signs, digits and dashes in order plus
 * counts of their points, colons and slashes (low half); 0 without a figure. */
static uint64_t figure_key(const uint32_t *t, Py_ssize_t n, const uint8_t *flags, const uint32_t *lower) {
    uint64_t low = 0, high = 0, low_rank = 0, high_rank = 0, counts[3] = {0, 0, 0};
    int has = 0;
    for (Py_ssize_t j = 0; j < n; j++)
        if (fig_class(flags, t[j]) & F_LETTER) {
            uint64_t lc = t[j] < 0x10000 ? lower[t[j]] : t[j];
            high += fmix64(lc * FIG_MIX + high_rank + 1);
            high_rank++;
        }
    for (Py_ssize_t k = 0; k < n;) {
        if (!(fig_class(flags, t[k]) & F_DIGIT)) {
            k++;
            continue;
        }
        uint8_t prev = k > 0 ? fig_class(flags, t[k - 1]) : F_ALLOWED;
        uint8_t prev2 = k > 1 ? fig_class(flags, t[k - 2]) : F_ALLOWED;
        int sign = k > 0 && (prev & F_SIGN) && (prev2 & F_ALLOWED);
        Py_ssize_t end = k + 1;  /* the run: digits, and separators between two digits */
        while (end < n) {
            uint8_t f = fig_class(flags, t[end]);
            if ((f & F_DIGIT) || ((f & F_INNER) && end + 1 < n && (fig_class(flags, t[end + 1]) & F_DIGIT)))
                end++;
            else
                break;
        }
        if ((prev & F_ALLOWED) || sign) {
            has = 1;
            if (sign) {
                uint64_t ch = t[k - 1] == '+' ? '+' : '-';
                low += fmix64(ch * FIG_MIX + low_rank + 1);
                low_rank++;
            }
            for (Py_ssize_t j = k; j < end; j++) {
                uint32_t c = t[j] == 0x2013 || t[j] == 0x2212 ? '-' : t[j];  /* an en dash inside is a dash */
                if (c == '.' || c == ':' || c == '/') counts[c == '.' ? 0 : c == ':' ? 1 : 2]++;
                if (c == '.' || c == ',' || c == ':' || c == '/') continue;
                low += fmix64((uint64_t)c * FIG_MIX + low_rank + 1);
                low_rank++;
            }
        }
        k = end;
    }
    if (!has) return 0;
    for (int k = 0; k < 3; k++) low += fmix64(counts[k] * FIG_MIX + (uint64_t)(k + 7));
    return (fmix64(high) & 0xFFFFFFFF00000000ULL) | (fmix64(low) & 0xFFFFFFFFULL) | 1ULL;
}

PyDoc_STRVAR(figure_keys_doc,
"figure_keys(codes, starts, lengths, flags, lower, out)\n\n"
"The figure key of every paragraph (text.figures): paragraph p is codes[starts[p]:starts[p] +\n"
"lengths[p]] (uint32 code points; int64 starts and lengths); flags (uint8) and lower (uint32) are\n"
"the classes and lower case of the 65,536 characters of the Basic Multilingual Plane; writes\n"
"out (uint64, one per paragraph).");

static PyObject *figure_keys(PyObject *self, PyObject *args) {
    Py_buffer codes = {0}, starts = {0}, lengths = {0}, flags = {0}, lower = {0}, out = {0};
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*w*", &codes, &starts, &lengths, &flags, &lower, &out)) return NULL;
    Py_ssize_t count = lengths.len / 8, total = codes.len / 4;
    const int64_t *len = (const int64_t *)lengths.buf, *at = (const int64_t *)starts.buf;
    if (need(&starts, count * 8, "starts") || need(&flags, 0x10000, "flags") || need(&lower, 0x10000 * 4, "lower")
        || need(&out, count * 8, "out"))
        goto done;
    for (Py_ssize_t p = 0; p < count; p++)
        if (len[p] < 0 || at[p] < 0 || at[p] > total - len[p]) {
            PyErr_SetString(PyExc_ValueError, "figure_keys: a paragraph runs outside the code points");
            goto done;
        }
    const uint32_t *t = (const uint32_t *)codes.buf;
    uint64_t *o = (uint64_t *)out.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t p = 0; p < count; p++)
        o[p] = figure_key(t + at[p], (Py_ssize_t)len[p], (const uint8_t *)flags.buf, (const uint32_t *)lower.buf);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&codes);
    PyBuffer_Release(&starts);
    PyBuffer_Release(&lengths);
    PyBuffer_Release(&flags);
    PyBuffer_Release(&lower);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"band_keys", band_keys, METH_VARARGS, band_keys_doc},
    {"bucket_pairs", bucket_pairs, METH_VARARGS, bucket_pairs_doc},
    {"verify_pairs", verify_pairs, METH_VARARGS, verify_pairs_doc},
    {"document_frequencies", document_frequencies, METH_VARARGS, frequencies_doc},
    {"paragraph_weights", paragraph_weights, METH_VARARGS, weights_doc},
    {"figure_keys", figure_keys, METH_VARARGS, figure_keys_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "neardup._pairs",
    "Compiled pair stages of neardup: band keys, bucket pairs, exact verification (see verify.py).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__pairs(void) { return PyModule_Create(&module); }

// neardup's page: ask the API, show the copies, compare two texts, show what repeats.
// Plain DOM; every text from the server goes in through textContent, never as markup.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const OUTLET_FIELDS = ["source", "outlet", "site", "publisher"];
  const DATE_FIELDS = ["date", "published", "published_at"];
  const state = {
    query: null,     // {text, paragraphs: [[start, end]] (code points), id: indexed id or null}
    matches: [],
    options: {},
    docId: null,     // the indexed story whose copies are shown (?id=), or null for a pasted one
  };

  // -- small helpers ----------------------------------------------------------------------------------

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  // A metadata field for people to read: text or a number (an object's "name"), at most 120
  // characters; an object, a list or an empty value is no outlet name.
  const SHOWN = 120;
  function field(metadata, names) {
    for (const name of names) {
      let value = metadata && metadata[name];
      if (value && typeof value === "object" && !Array.isArray(value)) value = value.name;
      if (typeof value === "number" || typeof value === "boolean") value = String(value);
      if (typeof value === "string" && value.trim() !== "") {
        return value.length > SHOWN ? value.slice(0, SHOWN - 1) + "…" : value;
      }
    }
    return null;
  }

  const percent = (x) => `${Math.round(x * 100)}%`;
  // "Outlet · date · title" of a document, from the fields it has
  const describe = (metadata) => [field(metadata, OUTLET_FIELDS), field(metadata, DATE_FIELDS),
    field(metadata, ["title", "headline"])].filter(Boolean).join(" · ");
  const plural = (n, one, many) => `${n.toLocaleString("en")} ${n === 1 ? one : many}`;
  const docPath = (id) => "/documents/" + encodeURIComponent(id);

  // The live region: errors and progress are shown; `quiet` results are only announced (the view says them).
  function status(message, isError, quiet) {
    const node = $("status");
    node.textContent = message || "";
    node.classList.toggle("error", Boolean(isError));
    node.classList.toggle("announce-only", Boolean(quiet));
    node.setAttribute("role", isError ? "alert" : "status");
  }

  async function api(method, path, body) {
    const init = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      throw new Error("The server cannot be reached. Is neardup serve still running?");
    }
    let data = null;
    try { data = await response.json(); } catch (err) { data = null; }
    if (!response.ok) {
      const error = new Error((data && data.message) || `The server answered ${response.status}.`);
      error.status = response.status;
      throw error;
    }
    return data;
  }

  // Server offsets count Unicode code points; JavaScript strings count UTF-16 units.
  function unitsOf(text) {
    if (!/[\uD800-\uDFFF]/.test(text)) return (i) => i;
    const map = [];
    let unit = 0;
    for (const ch of text) { map.push(unit); unit += ch.length; }
    map.push(unit);
    return (i) => map[Math.max(0, Math.min(i, map.length - 1))];
  }

  function paragraphsOf(text, spans) {
    const units = unitsOf(text);
    return spans.map(([start, end]) => text.slice(units(start), units(end)));
  }

  // -- which words two paragraphs share ------------------------------------------------------------------

  const UNSPACED = "\\p{Script=Han}\\p{Script=Hiragana}\\p{Script=Katakana}\\p{Script=Thai}\\p{Script=Lao}\\p{Script=Khmer}\\p{Script=Myanmar}";
  const TOKEN = new RegExp(`[${UNSPACED}]|(?:(?![${UNSPACED}])[\\p{L}\\p{N}\\p{M}])+`, "gu");

  function tokens(text) {
    const out = [];
    for (const m of text.matchAll(TOKEN)) {
      out.push({ word: m[0].normalize("NFKC").toLowerCase(), start: m.index, end: m.index + m[0].length });
    }
    return out;
  }

  // A marked run takes in the punctuation touching it: “fires.” rather than “fires”.
  const PUNCT = /[^\s\p{L}\p{N}\p{M}]/u;
  function widened(text, start, end) {
    while (start > 0 && PUNCT.test(text[start - 1])) start--;
    while (end < text.length && PUNCT.test(text[end])) end++;
    return [start, end];
  }

  // Ranges of `text` lying in a run of k words that also occurs in one of `partners` (k = 4, or
  // fewer for a short paragraph): an edited word stays unmarked, its neighbours stay marked.
  function sharedRanges(text, partners) {
    const mine = tokens(text);
    const theirs = partners.map(tokens);
    if (mine.length === 0) return [];
    const k = Math.max(1, Math.min(4, mine.length, ...theirs.map((t) => t.length || 1)));
    const grams = new Set();
    for (const list of theirs) {
      for (let i = 0; i + k <= list.length; i++) grams.add(list.slice(i, i + k).map((t) => t.word).join(" "));
    }
    const covered = new Uint8Array(mine.length);
    for (let i = 0; i + k <= mine.length; i++) {
      if (grams.has(mine.slice(i, i + k).map((t) => t.word).join(" "))) covered.fill(1, i, i + k);
    }
    const ranges = [];
    for (let i = 0; i < mine.length; i++) {
      if (!covered[i]) continue;
      let j = i;
      while (j + 1 < mine.length && covered[j + 1]) j++;
      ranges.push(widened(text, mine[i].start, mine[j].end));
      i = j;
    }
    // neardup says the paragraphs hold the same text: if the words differ in form only, mark it all
    return ranges.length ? ranges : [widened(text, mine[0].start, mine[mine.length - 1].end)];
  }

  // The longest chain of pairs increasing on both sides: these are shown side by side.
  function alignedChain(pairs) {
    const sorted = [...pairs].sort((a, b) => a.q - b.q || b.m - a.m);
    const tails = [];   // index into sorted of the chain end of each length
    const previous = new Array(sorted.length).fill(-1);
    sorted.forEach((pair, i) => {
      let lo = 0;
      let hi = tails.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (sorted[tails[mid]].m < pair.m) lo = mid + 1; else hi = mid;
      }
      previous[i] = lo > 0 ? tails[lo - 1] : -1;
      tails[lo] = i;
    });
    const chain = [];
    for (let i = tails.length ? tails[tails.length - 1] : -1; i >= 0; i = previous[i]) chain.push(sorted[i]);
    return chain.reverse();
  }

  // -- views ------------------------------------------------------------------------------------------------

  function show(view) {
    for (const id of ["results", "compare", "repetition"]) $(id).hidden = id !== view;
    $("ask").hidden = Boolean(view);
    document.body.dataset.view = view || "ask";
  }

  function focusHeading(id) {
    const heading = $(id);
    heading.focus({ preventScroll: true });
    window.scrollTo({ top: 0 });
  }

  function queryLabel() {
    return state.docId ? `“${state.docId}”` : "your story";
  }

  function optionsFromForm() {
    const options = {};
    const top = parseInt($("top").value, 10);
    if (Number.isFinite(top) && top >= 1) options.top = Math.min(top, 1000);
    const threshold = parseFloat($("threshold").value);
    if (Number.isFinite(threshold) && threshold > 0 && threshold <= 1) options.threshold = threshold;
    const containment = parseFloat($("min-containment").value);
    if (Number.isFinite(containment) && containment >= 0 && containment <= 1) options.min_containment = containment;
    return options;
  }

  function summarise(matches) {
    if (matches.length === 0) {
      return `No indexed document copies ${queryLabel()}: none holds enough of its text to count as a partial copy.`;
    }
    const counts = {};
    for (const m of matches) counts[m.kind] = (counts[m.kind] || 0) + 1;
    const parts = [["exact", "exact copy", "exact copies"], ["near-duplicate", "near-duplicate", "near-duplicates"],
      ["figures-differ", "copy with other figures", "copies with other figures"],
      ["partial", "partial copy", "partial copies"]]
      .filter(([kind]) => counts[kind]).map(([kind, one, many]) => plural(counts[kind], one, many));
    return `${plural(matches.length, "document copies", "documents copy")} ${queryLabel()}: ${parts.join(", ")}. ` +
      "Best first; open one to see the shared passages side by side.";
  }

  function scoreRow(label, value, asMeter) {
    const dd = el("dd");
    if (asMeter) {
      const bar = el("span");
      bar.style.width = percent(Math.max(0, Math.min(1, value)));
      dd.append(el("span", { class: "meter", "aria-hidden": "true" }, bar));
      dd.append(percent(value));
    } else {
      dd.append(String(value));
    }
    return [el("dt", { text: label }), dd];
  }

  function matchItem(match, rank) {
    const outlet = field(match.metadata, OUTLET_FIELDS);
    const date = field(match.metadata, DATE_FIELDS);
    const title = field(match.metadata, ["title", "headline"]);
    const name = outlet || match.id;
    const open = el("button", {
      type: "button", class: "open", text: name, "data-id": match.id,
      "aria-label": `${name}${date ? ", " + date : ""}: compare with ${queryLabel()}`,
      onclick: () => go("compare", { match: match.id }),
    });
    const who = el("div", { class: "who" }, open, date ? el("span", { class: "date", text: date }) : null,
      title ? el("p", { class: "title", text: title }) : null,
      outlet ? el("p", { class: "doc-id", text: match.id }) : null);
    const scores = el("dl", { class: "scores" },
      ...scoreRow("Jaccard", match.jaccard.toFixed(2), false),
      ...scoreRow(state.docId ? "Story in it" : "Your story in it", match.containment.query_in_match, true),
      ...scoreRow(state.docId ? "It in story" : "It in your story", match.containment.match_in_query, true),
      ...scoreRow("Shared ¶", match.shared_paragraphs.length, false));
    return el("li", { class: "match", "data-kind": match.kind },
      el("div", { class: "rank", text: String(rank) }),
      who,
      el("div", { class: "kind" }, el("span", { class: `badge kind-${match.kind}`, text: match.kind })),
      scores);
  }

  function renderResults() {
    const list = $("matches");
    list.replaceChildren(...state.matches.map((m, i) => matchItem(m, i + 1)));
    $("results-title").textContent = state.docId ? `Copies of “${state.docId}”` : "Copies of your story";
    $("results-about").textContent = state.docId ? describe(state.query.metadata) : "";
    $("results-summary").textContent = summarise(state.matches);
    $("new-search").textContent = state.docId ? "← New search" : "← Edit your story";
    const share = $("share-link");
    share.hidden = !state.docId;
    if (state.docId) share.href = "/?id=" + encodeURIComponent(state.docId);
    $("repeats-of-story").hidden = false;
  }

  function renderPairs(query, match, document_) {
    const left = paragraphsOf(query.text, query.paragraphs);
    const right = document_.text === null ? [] : paragraphsOf(document_.text, document_.paragraphs);
    const pairs = match.shared_paragraphs.map((p) => ({ q: p.query_paragraph, m: p.match_paragraph }))
      .filter((p) => p.q < left.length && p.m < right.length);
    const partnersOfLeft = new Map();
    const partnersOfRight = new Map();
    for (const { q, m } of pairs) {
      if (!partnersOfLeft.has(q)) partnersOfLeft.set(q, []);
      if (!partnersOfRight.has(m)) partnersOfRight.set(m, []);
      partnersOfLeft.get(q).push(m);
      partnersOfRight.get(m).push(q);
    }
    const chain = alignedChain(pairs);
    const outlet = field(match.metadata, OUTLET_FIELDS) || match.id;
    const about = state.docId ? describe(state.query.metadata) : "";
    const leftName = state.docId ? (field(state.query.metadata, OUTLET_FIELDS) || state.docId) : "Your story";

    function paragraph(texts, partnerTexts, partners, i, aligned, sideName, otherName) {
      const shared = partners.has(i);
      const node = el("p", { class: `para ${shared ? "shared" : "unshared"}`, "data-paragraph": String(i) });
      node.append(el("span", { class: "num", text: `¶${i + 1}` }));
      const text = texts[i];
      if (!shared) { node.append(text); return node; }
      let position = 0;
      for (const [start, end] of sharedRanges(text, partners.get(i).map((j) => partnerTexts[j]))) {
        if (start > position) node.append(text.slice(position, start));
        node.append(el("mark", { text: text.slice(start, end) }));
        position = end;
      }
      node.append(text.slice(position));
      if (!aligned) {
        const where = partners.get(i).map((j) => `¶${j + 1}`).join(", ");
        node.append(" ", el("span", { class: "tag", text: `elsewhere: ${otherName} ${where}` }));
      }
      return node;
    }

    function side(name, nodes) {
      const cell = el("div", { class: nodes.length ? "side" : "side empty" }, el("span", { class: "side-label", text: name }));
      if (nodes.length === 0) cell.append(el("p", { class: "empty-side", text: "(nothing here)" }));
      cell.append(...nodes);
      return cell;
    }

    const rows = [];
    let qi = 0;
    let mj = 0;
    const gap = (qEnd, mEnd) => {
      if (qi >= qEnd && mj >= mEnd) return;
      const leftNodes = [];
      const rightNodes = [];
      for (; qi < qEnd; qi++) leftNodes.push(paragraph(left, right, partnersOfLeft, qi, false, leftName, outlet));
      for (; mj < mEnd; mj++) rightNodes.push(paragraph(right, left, partnersOfRight, mj, false, outlet, leftName));
      rows.push(el("div", { class: "pair gap" }, side(leftName, leftNodes), side(outlet, rightNodes)));
    };
    for (const { q, m } of chain) {
      gap(q, m);
      rows.push(el("div", { class: "pair aligned" },
        side(leftName, [paragraph(left, right, partnersOfLeft, q, true, leftName, outlet)]),
        side(outlet, [paragraph(right, left, partnersOfRight, m, true, outlet, leftName)])));
      qi = q + 1;
      mj = m + 1;
    }
    gap(left.length, right.length);
    $("pairs").replaceChildren(...rows);
    $("left-head").textContent = state.docId && about ? `${about} (${state.docId})` : leftName;
    const date = field(match.metadata, DATE_FIELDS);
    $("right-head").textContent = `${outlet}${date ? " · " + date : ""}`;
  }

  async function renderCompare(matchId) {
    const match = state.matches.find((m) => m.id === matchId);
    if (!match) {
      status(`“${matchId}” is not among the copies of ${queryLabel()}.`, true);
      show("results");
      return;
    }
    status(`Loading “${matchId}”…`);
    let stored;
    try {
      stored = await api("GET", docPath(matchId));
    } catch (err) {
      status(err.message, true);
      return;
    }
    const outlet = field(match.metadata, OUTLET_FIELDS);
    $("compare-title").textContent = `${queryLabel()[0].toUpperCase() + queryLabel().slice(1)} and ${outlet ? outlet : "“" + match.id + "”"}`;
    const summary = [`${match.kind} · Jaccard ${match.jaccard.toFixed(2)}`,
      `${percent(match.containment.query_in_match)} of ${queryLabel()} is in this copy`,
      `${percent(match.containment.match_in_query)} of this copy comes from ${queryLabel()}`,
      plural(match.shared_paragraphs.length, "shared paragraph", "shared paragraphs")];
    if (outlet) summary.push(`id ${match.id}`);
    $("compare-summary").textContent = summary.join(" · ");
    if (stored.text === null) {
      $("pairs").replaceChildren(el("p", { class: "empty-side", text: "This index keeps no texts: only the scores can be shown." }));
    } else {
      renderPairs(state.query, match, stored);
    }
    show("compare");
    status("");
    focusHeading("compare-title");
  }

  async function renderRepetition() {
    status("Looking for repeated paragraphs…");
    let report;
    try {
      report = state.docId ? await api("GET", docPath(state.docId) + "/repeats")
        : await api("POST", "/repeats", { text: state.query.text });
    } catch (err) {
      status(err.message, true);
      return;
    }
    const texts = paragraphsOf(report.text, report.paragraph_spans);
    const groupOf = new Map();
    report.groups.forEach((group, g) => group.paragraphs.forEach((p) => groupOf.set(p, g)));
    // "¶n" in a note is a button that moves to paragraph n (a #fragment would re-route the page)
    const jump = (p) => el("button", {
      type: "button", class: "link-button", text: `¶${p + 1}`, "aria-label": `go to paragraph ${p + 1}`,
      onclick: () => {
        const target = $(`rep-${p}`);
        target.scrollIntoView({ block: "center" });
        target.focus({ preventScroll: true });
      },
    });
    const note = (words, paragraphs) => {
      const node = el("span", { class: "note" }, words + " ");
      paragraphs.forEach((p, k) => node.append(...(k ? [", ", jump(p)] : [jump(p)])));
      return node;
    };
    const items = texts.map((text, i) => {
      const g = groupOf.get(i);
      const item = el("li", { id: `rep-${i}`, tabindex: "-1", "data-paragraph": String(i) },
        el("span", { class: "num", text: `¶${i + 1}` }));
      if (g === undefined) { item.append(text); return item; }
      const group = report.groups[g];
      if (group.paragraphs[0] === i) {
        item.append(text, note("repeated at", group.paragraphs.slice(1)));
      } else {
        item.className = "repeat";
        item.append(el("mark", { text }));
        item.append(note(group.kind === "exact" && group.identical_text ? "repeats" : "nearly repeats",
          [group.paragraphs[0]]));
      }
      return item;
    });
    $("repetition-paragraphs").replaceChildren(...items);
    $("repetition-title").textContent = `Repetition inside ${queryLabel()}`;
    $("repetition-summary").textContent = report.repeated_paragraphs === 0
      ? `${plural(report.paragraphs, "paragraph", "paragraphs")}; none repeats another.`
      : `${plural(report.paragraphs, "paragraph", "paragraphs")} (${report.body_paragraphs} of body text); ` +
        `${report.repeated_paragraphs} repeat an earlier one — ${percent(report.duplicate_fraction)} of the body ` +
        `paragraphs, ${percent(report.duplicate_char_fraction)} of the characters, in ` +
        `${plural(report.groups.length, "group", "groups")}.`;
    show("repetition");
    status("");
    focusHeading("repetition-title");
  }

  // -- asking -----------------------------------------------------------------------------------------------

  async function searchText(text) {
    if (!text.trim()) {
      status("Paste a story first (or open a text file).", true);
      $("story").focus();
      return;
    }
    const button = $("find");
    button.disabled = true;
    status("Looking for copies…");
    try {
      state.options = optionsFromForm();
      const answer = await api("POST", "/query", { text, ...state.options });
      state.query = { text, paragraphs: answer.query.paragraphs, id: null };
      state.matches = answer.matches;
      state.docId = null;
      go("results", {}, true);
      status(state.matches.length ? `${plural(state.matches.length, "copy", "copies")} found.` : "No copies found.",
        false, true);
    } catch (err) {
      status(err.message, true);
    } finally {
      button.disabled = false;
    }
  }

  async function loadCopies(id) {
    status(`Looking for the copies of “${id}”…`);
    state.options = optionsFromForm();
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(state.options)) params.set(key, String(value));
    const suffix = params.toString() ? "?" + params : "";
    const answer = await api("GET", docPath(id) + "/copies" + suffix);
    state.query = { text: answer.query.text, paragraphs: answer.query.paragraphs, id, metadata: answer.query.metadata };
    state.matches = answer.matches;
    state.docId = id;
    $("doc-id").value = id;
    status(state.matches.length ? `${plural(state.matches.length, "copy", "copies")} of “${id}” found.`
      : `No copies of “${id}” found.`, false, true);
  }

  // -- navigation: ?id=ID, &match=ID, &view=repeats; history for pasted stories too -------------------------------

  function urlFor(view, extra) {
    if (!state.docId) return location.pathname + location.search;
    const params = new URLSearchParams({ id: state.docId });
    if (view === "compare") params.set("match", extra.match);
    if (view === "repetition") params.set("view", "repeats");
    return "/?" + params.toString();
  }

  function go(view, extra, push = true) {
    const entry = { view, ...extra, docId: state.docId };
    if (push) history.pushState(entry, "", urlFor(view, extra));
    else history.replaceState(entry, "", urlFor(view, extra));
    return render(view, extra);
  }

  async function render(view, extra) {
    if (view === "compare") return renderCompare(extra.match);
    if (view === "repetition") return renderRepetition();
    renderResults();
    show("results");
    if (extra.focus !== false) focusHeading("results-title");
    return undefined;
  }

  async function fromLocation(entry) {
    const params = new URLSearchParams(location.search);
    const id = params.get("id");
    if (!id) {
      if (entry && entry.view && state.query && !entry.docId) return render(entry.view, entry);
      state.docId = null;
      show(null);
      return undefined;
    }
    try {
      if (state.docId !== id || !state.query) await loadCopies(id);
    } catch (err) {
      show(null);
      status(err.status === 404 ? `No document “${id}” in this index.` : err.message, true);
      return undefined;
    }
    if (params.get("match")) return render("compare", { match: params.get("match") });
    if (params.get("view") === "repeats") return render("repetition", {});
    return render("results", { focus: Boolean(entry) });
  }

  // -- wiring -------------------------------------------------------------------------------------------------

  $("query-form").addEventListener("submit", (event) => {
    event.preventDefault();
    searchText($("story").value);
  });

  $("story").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      searchText($("story").value);
    }
  });

  $("file").addEventListener("change", async () => {
    const file = $("file").files[0];
    if (!file) return;
    if (file.size > 8 * 1024 * 1024) {
      status(`${file.name} is over 8 MB: paste the story instead.`, true);
      return;
    }
    $("story").value = await file.text();
    status(`Opened ${file.name}.`);
    searchText($("story").value);
  });

  $("id-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const id = $("doc-id").value.trim();
    if (!id) {
      status("Type the id of an indexed story.", true);
      $("doc-id").focus();
      return;
    }
    try {
      await loadCopies(id);
      go("results", {}, true);
    } catch (err) {
      status(err.status === 404 ? `No document “${id}” in this index.` : err.message, true);
    }
  });

  $("repeats-of-text").addEventListener("click", () => {
    const text = $("story").value;
    if (!text.trim()) {
      status("Paste a text first (or open a text file).", true);
      $("story").focus();
      return;
    }
    state.query = { text, paragraphs: [], id: null };
    state.docId = null;
    state.matches = [];
    $("repeats-of-story").hidden = true;
    go("repetition", {}, true);
  });

  $("repeats-of-story").addEventListener("click", () => go("repetition", {}, true));

  function back() {
    if (state.matches.length || state.docId) go("results", {}, true);
    else newSearch();
  }

  function newSearch() {
    history.pushState({ view: null }, "", "/");
    show(null);
    status("");
    $(state.docId ? "doc-id" : "story").focus();
  }

  for (const button of document.querySelectorAll("[data-back]")) button.addEventListener("click", back);
  $("new-search").addEventListener("click", newSearch);

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && (!$("compare").hidden || !$("repetition").hidden)) back();
  });

  window.addEventListener("popstate", (event) => { fromLocation(event.state); });

  api("GET", "/health").then((health) => {
    $("index-info").textContent = `${plural(health.documents, "document", "documents")} indexed`;
  }).catch(() => { $("index-info").textContent = "index unavailable"; });

  fromLocation(null);
})();

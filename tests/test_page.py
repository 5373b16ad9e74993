"""The page in a real browser: Debian's Chromium driven by Playwright, against a live server.

Paste a story, see its copies ranked with outlet and date, open one, find the shared passages
highlighted in both texts side by side, follow a ``/?id=`` link, see a page's repetition, use it
from the keyboard and on a phone-sized screen. Screenshots are written to
``$NEARDUP_SCREENSHOTS`` (default ``/tmp/neardup-page-shots``) for people to look at.

Needs ``pip install playwright`` (its own browser download is not used) and a Chromium binary:
``apt-get install chromium`` (``/usr/bin/chromium``), or ``NEARDUP_CHROMIUM=/path/to/chrome``.
Where either is missing the tests skip and say which; under CI (``CI`` set) they fail instead,
so CI cannot pass without running them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

# test_server skips (or, under CI, fails) when the serve extra is missing, before neardup.server is imported
from test_server import EXAMPLES, STORY, LiveServer, build_index, create_app

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOTS = Path(os.environ.get("NEARDUP_SCREENSHOTS", "/tmp/neardup-page-shots"))
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} - CI must run the browser tests (make browser installs what they need)")
    pytest.skip(reason)


def expect(locator: Any) -> Any:
    """Playwright's auto-waiting assertions (imported here: the module loads without playwright)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def _chromium() -> str:
    for candidate in (os.environ.get("NEARDUP_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    _unavailable("no Chromium binary found (apt-get install chromium, or set NEARDUP_CHROMIUM)")
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright; do not run 'playwright install')")
    executable = _chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = build_index(tmp_path_factory.mktemp("page") / "wire.idx")
    with LiveServer(create_app(path, readers=2)) as live:
        yield live.url


@pytest.fixture()
def page(browser: Any, server: str) -> Iterator[Any]:
    """A desktop-sized page that fails the test on any script error or console error."""
    context = browser.new_context(viewport=DESKTOP, base_url=server)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda err: problems.append(f"page error: {err}"))
    tab.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    tab.set_default_timeout(20_000)
    yield tab
    context.close()
    assert problems == []


def shot(page: Any, name: str, full_page: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def paste_and_search(page: Any, text: str = STORY) -> None:
    page.goto("/")
    page.get_by_label("Story text").fill(text)
    page.get_by_role("button", name="Find copies").click()
    page.wait_for_selector("#matches li")


def test_pasted_story_lists_its_copies_ranked_with_kind_scores_outlet_and_date(page: Any) -> None:
    """The five copies of the recall story come back best first: exact, near-duplicates, partial,
    each with its outlet, date, kind, Jaccard and containments."""
    page.goto("/")
    expect(page.locator("#index-info")).to_contain_text("27 documents")  # no eval: the page's CSP forbids it
    shot(page, "desktop-0-form", full_page=False)
    paste_and_search(page)
    items = page.locator("#matches li")
    assert items.count() == 5
    assert page.locator("#matches li .open").all_inner_texts() == [
        "Continental Newswire", "The Coastal Herald", "Daily Ledger", "Metro Pulse", "Riverbend Times"]
    assert page.locator("#matches li .badge").all_inner_texts() == [
        "exact", "near-duplicate", "near-duplicate", "near-duplicate", "partial"]
    first = items.first.inner_text()
    assert "2026-03-19" in first and "recall-original" in first and "1.00" in first and "100%" in first
    assert "5 documents copy your story" in page.locator("#results-summary").inner_text()
    assert page.evaluate("document.activeElement.id") == "results-title"
    shot(page, "desktop-1-results")


def test_opening_a_copy_shows_both_texts_side_by_side_with_the_shared_passages_marked(page: Any) -> None:
    """Open the partial copy: the two texts sit in two columns, shared paragraphs on the same row,
    the shared words inside <mark> on both sides, the copy's byline and the story's last paragraphs
    unmarked."""
    paste_and_search(page)
    page.get_by_role("button", name="Riverbend Times").click()
    page.wait_for_selector("#pairs mark")
    assert page.locator("#compare-title").inner_text() == "Your story and Riverbend Times"
    assert "partial" in page.locator("#compare-summary").inner_text()
    rows = page.locator("#pairs .pair.aligned")
    assert rows.count() == 9  # the nine shared paragraphs, each beside its copy
    headline = "Kestrel Labs recalls 1.3 million power banks after reports of fires"
    first = rows.first.locator(".side")
    assert first.nth(0).locator("mark").all_inner_texts() == [headline]
    assert first.nth(1).locator("mark").all_inner_texts() == [headline]
    for i in range(rows.count()):
        left, right = rows.nth(i).locator(".side").nth(0), rows.nth(i).locator(".side").nth(1)
        assert left.locator("mark").count() >= 1 and right.locator("mark").count() >= 1
        assert " ".join(left.locator("mark").all_inner_texts()).split()[:4] == \
            " ".join(right.locator("mark").all_inner_texts()).split()[:4]
        box_left, box_right = left.bounding_box(), right.bounding_box()
        assert box_left["x"] < box_right["x"] and abs(box_left["y"] - box_right["y"]) < 2  # side by side
    byline = page.locator("#pairs .para", has_text="By Staff Writer")
    assert byline.count() == 1 and byline.locator("mark").count() == 0
    tail = page.locator("#pairs .para", has_text="Lawyers in California and Illinois")
    assert tail.count() == 1 and tail.locator("mark").count() == 0
    shot(page, "desktop-2-compare", full_page=False)
    shot(page, "desktop-2-compare-full")
    page.get_by_role("button", name="All copies").click()
    page.wait_for_selector("#results:not([hidden])")
    assert page.locator("#matches li").count() == 5


def test_an_edited_word_is_left_unmarked_inside_a_shared_paragraph(page: Any) -> None:
    """A copy with one word changed: the paragraph is shared, the changed word is outside the marks."""
    edited = STORY.replace("said on Thursday that it was recalling", "said on Thursday that it is recalling")
    paste_and_search(page, edited)
    page.get_by_role("button", name="Continental Newswire").click()
    page.wait_for_selector("#pairs mark")
    row = page.locator("#pairs .pair.aligned", has_text="slimline phone chargers")
    left_marks = " ".join(row.locator(".side").nth(0).locator("mark").all_inner_texts())
    right_marks = " ".join(row.locator(".side").nth(1).locator("mark").all_inner_texts())
    assert "is recalling" not in left_marks and "was recalling" not in right_marks
    assert "slimline phone chargers" in left_marks and "slimline phone chargers" in right_marks


def test_an_id_link_opens_the_copies_of_an_indexed_story_and_a_match_link_the_comparison(page: Any) -> None:
    """/?id=ID shows the copies of that story (itself left out); the link can be sent; &match= opens
    one comparison directly; the browser's Back returns to the list."""
    page.goto("/?id=harbour-original")
    page.wait_for_selector("#matches li")
    assert page.locator("#results-title").inner_text() == "Copies of “harbour-original”"
    assert page.locator("#results-about").inner_text() == "Meridian Press Agency · 2026-03-14"
    ids = page.locator("#matches li .doc-id").all_inner_texts()
    assert set(ids) == {"harbour-coastal-herald", "harbour-daily-ledger", "harbour-metro-pulse"}
    assert page.locator("#share-link").get_attribute("href") == "/?id=harbour-original"
    assert page.locator("#ask").is_hidden()
    shot(page, "desktop-3-id-link")
    page.get_by_role("button", name="Daily Ledger").click()
    page.wait_for_selector("#pairs mark")
    assert "match=harbour-daily-ledger" in page.url
    page.go_back()
    page.wait_for_selector("#results:not([hidden])")
    assert page.locator("#matches li").count() == 3
    page.goto("/?id=harbour-original&match=harbour-metro-pulse")
    page.wait_for_selector("#pairs mark")
    assert page.locator("#compare-title").inner_text() == "“harbour-original” and Metro Pulse"
    assert page.locator("#left-head").inner_text() == "Meridian Press Agency · 2026-03-14 (harbour-original)"
    assert page.locator("#pairs .pair.aligned").count() >= 10


def test_an_id_link_to_an_unknown_story_says_so(browser: Any, server: str) -> None:
    """/?id=unknown explains, in an alert, that the index has no such document (the browser logs the
    404 of the look-up, so this test uses a page of its own)."""
    context = browser.new_context(viewport=DESKTOP, base_url=server)
    try:
        tab = context.new_page()
        tab.goto("/?id=" + quote("no such story"))
        expect(tab.locator("#status")).to_contain_text("No document")
        assert tab.locator("#status").get_attribute("role") == "alert"
        assert tab.locator("#ask").is_visible()
    finally:
        context.close()


def test_the_repetition_view_marks_the_repeated_paragraphs(page: Any) -> None:
    """The page whose body appears twice: 13 paragraphs are marked as repeats of earlier ones."""
    page.goto("/?id=repeated-page&view=repeats")
    page.wait_for_selector("#repetition-paragraphs li")
    assert page.locator("#repetition-paragraphs li").count() == 27
    assert page.locator("#repetition-paragraphs li.repeat").count() == 13
    assert "13 repeat an earlier one" in page.locator("#repetition-summary").inner_text()
    assert page.locator("#repetition-paragraphs li").nth(14).locator(".note").inner_text() == "repeats ¶2"
    page.locator("#repetition-paragraphs li").nth(14).get_by_role("button", name="go to paragraph 2").click()
    assert page.evaluate("document.activeElement.id") == "rep-1"
    shot(page, "desktop-4-repetition")
    page.goto("/")
    page.get_by_label("Story text").fill((EXAMPLES / "repeated-page.txt").read_text(encoding="utf-8"))
    page.get_by_role("button", name="What repeats inside it?").click()
    page.wait_for_selector("#repetition-paragraphs li.repeat")
    assert page.locator("#repetition-paragraphs li.repeat").count() == 13


def test_a_story_can_be_opened_from_a_file(page: Any, tmp_path: Path) -> None:
    """Choosing a text file fills the story and searches."""
    story = tmp_path / "story.txt"
    story.write_text(STORY, encoding="utf-8")
    page.goto("/")
    page.set_input_files("#file", str(story))
    page.wait_for_selector("#matches li")
    assert page.locator("#matches li").count() == 5


def test_the_page_works_from_the_keyboard(page: Any) -> None:
    """Type, Ctrl+Enter to search, Tab to a copy, Enter to open it, Escape to go back."""
    page.goto("/")
    page.get_by_label("Story text").focus()
    page.keyboard.insert_text(STORY)
    page.keyboard.press("Control+Enter")
    page.wait_for_selector("#matches li")
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('open')"):
            break
    assert page.evaluate("document.activeElement.textContent") == "Continental Newswire"
    page.keyboard.press("Enter")
    page.wait_for_selector("#compare:not([hidden]) #pairs mark")
    assert page.evaluate("document.activeElement.id") == "compare-title"
    page.keyboard.press("Escape")
    page.wait_for_selector("#results:not([hidden])")


def test_every_control_has_a_label_and_errors_are_announced(page: Any) -> None:
    """Inputs have labels, buttons have names, and an empty search says what to do in an alert."""
    page.goto("/")
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, textarea, select, button')]
        .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
        .map((e) => e.id || e.outerHTML)""")
    assert unlabelled == []
    page.get_by_role("button", name="Find copies").click()
    assert page.locator("#status").get_attribute("role") == "alert"
    assert "Paste a story" in page.locator("#status").inner_text()
    assert page.evaluate("document.activeElement.id") == "story"


def test_on_a_phone_the_page_fits_and_the_texts_alternate(browser: Any, server: str) -> None:
    """At 390 px: no horizontal scrolling, results and comparison in one column, each paragraph
    labelled with the text it belongs to."""
    context = browser.new_context(viewport=PHONE, base_url=server, is_mobile=True, has_touch=True)
    phone = context.new_page()
    phone.set_default_timeout(20_000)
    try:
        phone.goto("/")
        shot(phone, "phone-0-form", full_page=False)
        paste_and_search(phone)
        assert phone.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
        shot(phone, "phone-1-results")
        phone.get_by_role("button", name="Riverbend Times").click()
        phone.wait_for_selector("#pairs mark")
        assert phone.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
        row = phone.locator("#pairs .pair.aligned").first
        left, right = row.locator(".side").nth(0).bounding_box(), row.locator(".side").nth(1).bounding_box()
        assert right["y"] > left["y"]  # one above the other
        assert row.locator(".side-label").nth(0).is_visible()
        shot(phone, "phone-2-compare", full_page=False)
        phone.goto("/?id=repeated-page&view=repeats")
        phone.wait_for_selector("#repetition-paragraphs li.repeat")
        assert phone.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
        shot(phone, "phone-3-repetition", full_page=False)
    finally:
        context.close()


def test_the_page_reads_in_the_dark_too(browser: Any, server: str) -> None:
    """With a dark colour scheme the page switches its colours (and a screenshot is kept)."""
    context = browser.new_context(viewport=DESKTOP, base_url=server, color_scheme="dark")
    dark = context.new_page()
    try:
        paste_and_search(dark)
        dark.get_by_role("button", name="Daily Ledger").click()
        dark.wait_for_selector("#pairs mark")
        background = dark.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background != "rgb(251, 250, 247)"
        shot(dark, "dark-compare", full_page=False)
    finally:
        context.close()


def test_odd_outlet_names_never_break_the_page(browser: Any, tmp_path: Path) -> None:
    """A source of 100,000 characters is cut short and wraps (it once made a phone page 1.76M px
    wide); an object with a name shows the name; any other object is no name ("[object Object]"
    once showed); the id stands in."""
    from serving import wire_records

    odd = {"recall-metro-pulse": "Metro Pulse " * 8_400, "recall-riverbend-times": {"name": "Named Object Outlet"},
           "recall-daily-ledger": {"x": 1}}
    records = [dict(r, source=odd[r["id"]]) if r["id"] in odd else r for r in wire_records()]
    path = build_index(tmp_path / "odd.idx", records)
    with LiveServer(create_app(path, readers=2)) as live:
        context = browser.new_context(viewport=PHONE, base_url=live.url, is_mobile=True, has_touch=True)
        phone = context.new_page()
        phone.set_default_timeout(20_000)
        try:
            paste_and_search(phone)
            matches = phone.locator("#matches")
            expect(matches).to_contain_text("Named Object Outlet")
            expect(matches).not_to_contain_text("[object Object]")
            expect(matches).to_contain_text("recall-daily-ledger")
            assert phone.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
            assert "Metro Pulse " * 20 not in matches.inner_text()
            shot(phone, "phone-odd-sources")
        finally:
            context.close()

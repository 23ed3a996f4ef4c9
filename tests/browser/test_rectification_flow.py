"""A rectification item through the real UI in Debian's chromium, screenshots of each page on the way."""

from __future__ import annotations

import io
import struct
import unicodedata
import zlib

from pypdf import PdfReader

from service.ledger import HEADERS
from tests.browser.conftest import ARTIFACTS
from tests.support import ASSIGNED, REGISTERED, Driver, seed_people
from workflows.engine import specs
from workflows.engine.db import make_engine, make_session_factory, transaction
from workflows.programme import org
from workflows.programme.units import start_programme

PHONE = {"width": 390, "height": 844}  # secretaries work on their phones


def prepare(db_url: str, clock) -> None:
    factory = make_session_factory(make_engine(db_url))
    with transaction(factory) as session:
        now = clock.now()
        specs.deploy_all(session, now=now, actor="t")
        seed_people(session, now)
        org.add_branch(session, "二支部", "第二党支部", now=now, actor="t")
        org.add_user(
            session,
            "secretary2",
            password="Zhibu-test-2026",
            role="secretary",
            branch_code="二支部",
            now=now,
            actor="t",
        )
        org.add_user(session, "inspector1", password="Zhibu-test-2026", role="inspector", now=now, actor="t")
    driver = Driver(db_url, clock, "straight")
    driver.start(REGISTERED, actor="office1")
    driver.start({**REGISTERED, "branch": "二支部", "title": "二支部的问题"}, actor="office1")
    driver.close()


def sign_in(context, base: str, username: str):
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "Zhibu-test-2026")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base}/inbox")
    return page


def _png() -> bytes:
    """A small real PNG (a thumbnail must decode), made here: no image library needed."""
    width, height = 64, 48
    raw = b"".join(b"\x00" + bytes([180, 30 + y * 4, 40]) * width for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


PNG = _png()


def test_secretary_fixes_a_form_error_office_signs_off_inspector_reads_the_trail(
    browser, live, shot, tmp_path
):
    base, db_url, clock = live
    prepare(db_url, clock)

    secretary = sign_in(browser.new_context(viewport=PHONE, locale="zh-CN"), base, "secretary1")
    items = secretary.locator("li.task")
    assert items.count() == 1
    assert "支委会记录不全" in items.first.inner_text() and "二支部的问题" not in secretary.content()
    shot(secretary, "inbox")
    items.first.locator("a").click()
    # The responsible person is chosen from the branch's people, by name and role.
    options = secretary.locator("#f-responsible option").all_inner_texts()
    assert any(o.startswith("zhangsan") or "（" in o for o in options[1:]) and "secretary2" not in " ".join(
        options
    )
    secretary.select_option("#f-responsible", ASSIGNED["responsible"])
    secretary.fill("#f-measures", "补齐会议记录并建立台账")
    secretary.click("form.taskform button[type=submit]")
    deadline = secretary.locator(".field.has-error", has=secretary.locator("#f-deadline"))
    assert "请填写“整改时限”" in deadline.inner_text()
    assert secretary.input_value("#f-measures") == "补齐会议记录并建立台账"  # kept
    assert secretary.input_value("#f-responsible") == ASSIGNED["responsible"]  # kept
    shot(secretary, "form-with-error")
    secretary.fill("#f-deadline", ASSIGNED["deadline"])
    secretary.click("form.taskform button[type=submit]")
    secretary.wait_for_url(f"{base}/inbox")
    assert "已提交：明确责任" in secretary.content()

    member = sign_in(browser.new_context(viewport=PHONE, locale="zh-CN"), base, "zhangsan")
    member.locator("li.task a").first.click()
    member.fill("#f-done", "已补齐三季度支委会记录")
    member.reload()  # typing survives a reload as a draft of this task and person
    assert member.input_value("#f-done") == "已补齐三季度支委会记录" and "草稿" in member.content()
    member.fill("#f-evidence", "支委会记录-7月.pdf\n支委会记录-8月.pdf")
    photo = tmp_path / "会议现场.png"
    photo.write_bytes(PNG)
    member.set_input_files("#upload-files", str(photo))  # chosen with the form, sent with it
    member.click("form.taskform button[type=submit]")
    member.wait_for_url(f"{base}/inbox")

    office = sign_in(browser.new_context(locale="zh-CN"), base, "office1")
    office.locator("li.task a", has_text="验收销号").click()
    latest = office.locator(".round.latest").inner_text()
    assert "已补齐三季度支委会记录" in latest and "支委会记录-7月.pdf" in latest  # the signer sees the fix
    thumb = office.locator(".round.latest img.thumb")
    assert thumb.count() == 1 and thumb.evaluate("img => img.complete && img.naturalWidth > 0")
    shot(office, "signoff")
    office.check("input[name=approved][value=true]")
    office.fill("#f-comment", "材料齐全，予以销号")
    office.click("form.taskform button[type=submit]")
    office.wait_for_url(f"{base}/inbox")
    office.goto(f"{base}/dashboard")
    assert "工作看板" in office.content()
    shot(office, "dashboard")
    office.goto(f"{base}/ledger")
    row = office.locator("table.grid tbody tr", has_text="支委会记录不全")
    assert "已销号" in row.inner_text() and "zhangsan" in row.inner_text()
    shot(office, "ledger")
    # The print view fits A4 landscape with every column of the ledger.
    office.goto(f"{base}/ledger/print")
    pdf = PdfReader(io.BytesIO(office.pdf(prefer_css_page_size=True, print_background=True)))
    width, height = (float(v) for v in pdf.pages[0].mediabox.upper_right)
    assert round(width) == 842 and round(height) == 595  # A4 landscape, in points
    # The embedded CJK font maps some characters to compatibility forms (⽀ for 支): compare as NFKC.
    text = unicodedata.normalize("NFKC", "".join(page.extract_text() for page in pdf.pages))
    for header in HEADERS:
        assert header in text, header
    (ARTIFACTS / "ledger-print.pdf").write_bytes(office.pdf(prefer_css_page_size=True))
    office.goto(f"{base}/ledger")
    row.locator("a").first.click()
    office.wait_for_selector("#diagram[data-ready=true]")
    assert office.locator("#diagram .djs-element.done").count() >= 3
    shot(office, "process-view")

    inspector = sign_in(browser.new_context(locale="zh-CN"), base, "inspector1")
    inspector.goto(f"{base}/branches/一支部/dossier")
    text = inspector.locator("main").inner_text()
    assert "明确责任" in text and "验收销号" in text
    events = inspector.locator("table.grid").last.inner_text()
    assert "secretary1" in events and "office1" in events
    shot(inspector, "dossier")
    inspector.goto(f"{base}/trail")
    assert "哈希链校验通过" in inspector.content()


def test_repeated_rows_keep_their_labels_on_a_phone(browser, live, shot):
    base, db_url, clock = live
    prepare(db_url, clock)
    start_programme(make_session_factory(make_engine(db_url)), 2026, None, actor="office1", clock=clock)
    secretary = sign_in(browser.new_context(viewport=PHONE, locale="zh-CN"), base, "secretary1")
    secretary.locator("li.task a", has_text="动员部署").click()
    cells = secretary.locator("table.rows tbody tr").first.locator("td")
    assert cells.count() >= 2
    for index in range(cells.count()):
        cell = cells.nth(index)
        label = cell.evaluate("td => getComputedStyle(td, '::before').content")
        assert label.strip('"') == cell.get_attribute("data-label") and label.strip('"')
        box = cell.bounding_box()
        assert box is not None and box["width"] <= PHONE["width"]  # stacked, not a table wider than the phone
    assert secretary.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(secretary, "rows-on-phone")

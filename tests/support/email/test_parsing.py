"""parse_email on the corpus of real-world shaped mail, then on the edge cases."""

from __future__ import annotations

import base64
import json
import random
import re
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest

from support.email.parsing import (
    MAX_ID_LENGTH,
    ParsedEmail,
    html_to_text,
    parse_email,
    reply_part,
)

CORPUS = Path(__file__).parent / "corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
MESSAGES = EXPECTED["messages"]
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef]")


def parse_file(name: str) -> ParsedEmail:
    return parse_email((CORPUS / name).read_bytes())


def mail(body: str = "Hello", *, raw_headers: str = "", **headers: str) -> bytes:
    """A small message; header names in keyword form (``in_reply_to`` → In-Reply-To)."""
    lines = [f"{name.strip('_').replace('_', '-').title()}: {v}" for name, v in headers.items()]
    head = "\n".join([*lines, raw_headers] if raw_headers else lines)
    return f"{head}\n\n{body}".encode()


# ---- the corpus --------------------------------------------------------------------


def test_every_corpus_file_has_expectations():
    assert sorted(p.name for p in CORPUS.glob("*.eml")) == sorted(MESSAGES)


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_corpus_message(name):
    expected = MESSAGES[name]
    parsed = parse_file(name)

    for field in ("from_address", "from_name", "subject", "message_id", "has_message_id"):
        if field in expected:
            assert getattr(parsed, field) == expected[field], field
    for field in ("in_reply_to", "references", "to", "cc", "delivered_to", "charset_fallbacks"):
        if field in expected:
            assert list(getattr(parsed, field)) == expected[field], field
    if "is_forward" in expected:
        assert parsed.is_forward is expected["is_forward"]
    if "date" in expected:
        assert parsed.date == datetime.fromisoformat(expected["date"])
    if expected.get("message_id_synthetic"):
        assert re.fullmatch(r"synthetic-[0-9a-f]{64}@helpdesk\.invalid", parsed.message_id)

    if "reply_text" in expected:
        assert parsed.reply_text == expected["reply_text"]
    for part in expected.get("reply_text_contains", []):
        assert part in parsed.reply_text
    for part in expected.get("reply_text_excludes", []):
        assert part not in parsed.reply_text
    for part in expected.get("text_contains", []):
        assert part in parsed.text
    for part in expected.get("text_excludes", []):
        assert part not in parsed.text
    for part in expected.get("html_contains", []):
        assert part in parsed.html

    assert len(parsed.attachments) == len(expected["attachments"])
    for attachment, wanted in zip(parsed.attachments, expected["attachments"], strict=True):
        assert attachment.filename == wanted["filename"]
        assert attachment.content_type == wanted["content_type"]
        assert attachment.inline is wanted["inline"]
        if "content_id" in wanted:
            assert attachment.content_id == wanted["content_id"]
        if "size" in wanted:
            assert attachment.size == wanted["size"]
        if "starts_with" in wanted:
            assert attachment.content.startswith(bytes.fromhex(wanted["starts_with"]))


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_corpus_texts_are_clean(name):
    """No NUL, no control character but \\n and \\t, nothing that cannot be encoded."""
    parsed = parse_file(name)
    texts = [parsed.text, parsed.reply_text, parsed.html, parsed.subject, parsed.from_name]
    texts += [parsed.message_id, *parsed.references, *(a.filename for a in parsed.attachments)]
    for text in texts:
        assert not CONTROL.search(text), repr(text)
        text.encode("utf-8")
    for attachment in parsed.attachments:
        assert attachment.filename
        assert "/" not in attachment.filename
        assert "\\" not in attachment.filename


@pytest.mark.parametrize(
    "name", ["gmail_reply.eml", "outlook_reply.eml", "apple_mail_reply.eml", "forwarded.eml"]
)
def test_the_html_alone_gives_the_same_reply(name):
    """Clients that send HTML only: the quote is cut where the HTML marks it."""
    original = parse_file(name)
    html_only = EmailMessage()
    html_only["From"] = "someone@example.org"
    html_only["Subject"] = original.subject
    html_only.set_content(original.html, subtype="html")

    parsed = parse_email(html_only.as_bytes())

    # The HTML is not wrapped at 72 columns; compare the words.
    assert parsed.reply_text.split() == original.reply_text.split()


# ---- identity and threading headers -------------------------------------------------


def test_without_message_id_a_synthetic_id_from_the_bytes():
    raw = mail("Hi", from_="a@example.org", subject="No id")
    first, again = parse_email(raw), parse_email(raw)
    other = parse_email(raw + b" ")

    assert first.has_message_id is False
    assert first.message_id == again.message_id
    assert first.message_id != other.message_id
    assert first.message_id.endswith("@helpdesk.invalid")
    assert "missing Message-ID" in first.defects


def test_ids_are_stripped_of_brackets_and_folding_whitespace():
    raw = mail(
        raw_headers=(
            "Message-ID:\n <Abc.123@Example.ORG >\n"
            "In-Reply-To: <first@x.example> (Jane's message of Tuesday)\n"
            "References: <first@x.example>\n <second@x.example>,<third@x.example>\n"
            "  <first@x.example>"
        ),
        from_="a@example.org",
    )

    parsed = parse_email(raw)

    assert parsed.message_id == "Abc.123@Example.ORG"
    assert parsed.in_reply_to == ("first@x.example",)
    assert parsed.references == ("first@x.example", "second@x.example", "third@x.example")


def test_bare_ids_without_brackets_are_read():
    parsed = parse_email(mail(message_id="bare@x.example", in_reply_to="parent@x.example"))

    assert parsed.message_id == "bare@x.example"
    assert parsed.in_reply_to == ("parent@x.example",)


def test_hostile_long_ids_become_one_stable_digest():
    long_id = "a" * 5000 + "@x.example"
    parsed = parse_email(mail(message_id=f"<{long_id}>", references=f"<{long_id}> <ok@x>"))

    assert len(parsed.message_id) <= MAX_ID_LENGTH
    assert parsed.references[0] == parsed.message_id
    assert parsed.references[1] == "ok@x"


def test_huge_header_folding():
    words = [f"word{n}" for n in range(3000)]
    subject = "\n\t".join(words)
    references = "\n ".join(f"<id{n}@x.example>" for n in range(500))

    parsed = parse_email(mail(raw_headers=f"Subject: {subject}\nReferences: {references}"))

    assert parsed.subject == " ".join(words)
    assert len(parsed.references) == 500
    assert parsed.references[0] == "id0@x.example"
    assert parsed.references[-1] == "id499@x.example"


def test_addresses_lower_case_and_deduplicated():
    parsed = parse_email(
        mail(
            from_='"Doe, Jane" <Jane.Doe@Example.ORG>',
            to="Support <Support@Help.Example>, support@help.example, undisclosed-recipients:;",
            reply_to="=?utf-8?q?J=C3=A4ne?= <reply@Example.org>",
            raw_headers="Delivered-To: A@help.example\nX-Original-To: b@help.example",
        )
    )

    assert (parsed.from_name, parsed.from_address) == ("Doe, Jane", "jane.doe@example.org")
    assert parsed.to == ("support@help.example",)
    assert parsed.reply_to == ("reply@example.org",)
    assert parsed.delivered_to == ("a@help.example", "b@help.example")


def test_an_encoded_display_name_with_a_comma_is_one_address():
    parsed = parse_email(mail(from_="=?utf-8?q?M=C3=BCller=2C_Jana?= <jana@contoso.example>"))

    assert (parsed.from_name, parsed.from_address) == ("Müller, Jana", "jana@contoso.example")


def test_dates():
    assert parse_email(mail(date="Tue, 1 Dec 2026 10:02:00 -0000")).date == datetime(
        2026, 12, 1, 10, 2, tzinfo=UTC
    )
    unparseable = parse_email(mail(date="the day after tomorrow"))
    assert unparseable.date is None
    assert "unparseable Date" in unparseable.defects
    assert parse_email(mail()).date is None


# ---- malformed mail -----------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\x01\xff\xfe not a mail",
        b'From: "unterminated <a@b.example>\nTo: ,,,;;;<>\nSubject: =?utf-8?B?####?=\n\nx',
        b"From: " + b"(" * 3000 + b"a@b.example" + b")" * 3000 + b"\n\nx",
        b"Content-Type: text/plain; charset=" + b"(" * 3000 + b"\n\nbody",
        b'Content-Type: multipart/mixed; boundary=""\n\n--\n\nx',
        b"Subject: x\nthis line is no header\nFrom: a@b.example\n\nbody",
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nno end",
        b"Content-Transfer-Encoding: base64\n\n!!!not base64###",
        b"Content-Disposition: attachment; filename*0*=x''%ZZ; filename*1=\"a\n\n%PDF",
    ],
)
def test_malformed_mail_never_raises(raw):
    parsed = parse_email(raw)

    assert isinstance(parsed, ParsedEmail)
    for text in (parsed.text, parsed.reply_text, parsed.subject, parsed.from_address):
        assert not CONTROL.search(text)


def test_malformed_from_falls_back_to_the_address_inside():
    parsed = parse_email(b'From: "unterminated <a@b.example>\n\nx')

    assert parsed.from_address == "a@b.example"


def test_no_from_at_all():
    parsed = parse_email(mail("x", subject="anonymous"))

    assert (parsed.from_name, parsed.from_address) == ("", "")
    assert "no From address" in parsed.defects


def test_thousands_of_nested_parts_keep_the_headers():
    body = b"".join(
        b"--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n" % (n, n + 1) for n in range(3000)
    )
    raw = b"From: a@b.example\nMessage-ID: <deep@x>\nContent-Type: multipart/mixed; boundary=b0\n\n"

    parsed = parse_email(raw + body + b"--b3000\nContent-Type: text/plain\n\nhello\n")

    assert parsed.message_id == "deep@x"
    assert parsed.from_address == "a@b.example"


def test_mutated_corpus_never_raises():
    """Seeded random damage to the corpus (bytes flipped, cut, inserted)."""
    originals = [path.read_bytes() for path in sorted(CORPUS.glob("*.eml"))]
    rng = random.Random(20261201)  # noqa: S311 - reproducible damage, not secrets
    inserts = [b"\n", b"=?", b"?=", b"<", b">", b"\x00", b"--", b"\r\n\r\n", b";", b"*0*="]
    inserts += [b"charset=x-foo", "é".encode(), b"\xff", b"=\n", b"(("]
    for _ in range(400):
        data = bytearray(rng.choice(originals))
        for _ in range(rng.randint(1, 25)):
            position = rng.randrange(len(data))
            roll = rng.random()
            if roll < 0.4:
                data[position] = rng.randrange(256)
            elif roll < 0.7:
                del data[position : position + rng.randint(1, 40)]
            else:
                data[position:position] = rng.choice(inserts)
        parsed = parse_email(bytes(data))
        for text in (parsed.text, parsed.reply_text, parsed.subject, parsed.message_id):
            assert not CONTROL.search(text)


# ---- charsets -----------------------------------------------------------------------


def test_unknown_charset_falls_back_to_utf8_with_replacement():
    raw = b"Content-Type: text/plain; charset=x-klingon\n\ncaf\xc3\xa9 \xff"

    parsed = parse_email(raw)

    assert parsed.text == "café \ufffd"
    assert parsed.charset_fallbacks == ("x-klingon",)
    assert "unknown charset 'x-klingon'" in parsed.defects


def test_declared_utf8_that_is_not_falls_back():
    parsed = parse_email(b"Content-Type: text/plain; charset=utf-8\n\ncaf\xe9")

    assert parsed.text == "caf\ufffd"
    assert parsed.charset_fallbacks == ("utf-8",)


def test_latin1_labelled_mail_is_read_as_windows_1252():
    parsed = parse_email(b"Content-Type: text/plain; charset=iso-8859-1\n\n\x80 5, \x93quoted\x94")

    assert parsed.text == "€ 5, “quoted”"
    assert parsed.charset_fallbacks == ()


def test_mislabelled_utf8_is_recognized():
    raw = b"Content-Type: text/plain; charset=iso-2022-jp\n\n\xe2\x82\xac \xf0\x9f\x98\x80"

    parsed = parse_email(raw)

    assert parsed.text == "€ 😀"
    assert parsed.charset_fallbacks == ("iso-2022-jp",)


def test_undeclared_8bit_that_is_not_utf8_is_windows_1252():
    parsed = parse_email(b"Content-Type: text/plain\n\nna\xefve caf\xe9")

    assert parsed.text == "naïve café"
    assert parsed.charset_fallbacks == ("(none)",)


def test_encoded_words_split_inside_a_character_and_touching_text():
    euro = "€".encode()
    first = f"=?utf-8?b?{base64.b64encode(b'5 ' + euro[:1]).decode()}?="
    second = f"=?utf-8?b?{base64.b64encode(euro[1:]).decode()}?="
    parsed = parse_email(
        mail(raw_headers=f"Subject: Price:{first}\n {second} (VAT) =?x-bad?q?=41?=")
    )

    assert parsed.subject == "Price:5 € (VAT) A"


def test_raw_8bit_headers_are_decoded():
    raw = "Subject: Café Zoë\nFrom: Zoë <zoe@example.org>\n\nx".encode()

    parsed = parse_email(raw)

    assert (parsed.subject, parsed.from_name) == ("Café Zoë", "Zoë")


# ---- bodies -------------------------------------------------------------------------


def test_nul_and_control_characters_are_removed_everywhere():
    raw = (
        b"From: =?utf-8?q?Ja=00ne?= <jane@example.org>\n"
        b"Subject: =?utf-8?q?a=00b=07c?=\n"
        b"Content-Type: multipart/mixed; boundary=b\n\n"
        b"--b\nContent-Type: text/plain; charset=utf-8\n\nx\x00y\x1bz\r\nend\x7f\n"
        b"--b\nContent-Type: application/pdf\n"
        b'Content-Disposition: attachment; filename="in\\x01voice\x00.pdf"\n\n%PDF\n--b--\n'
    )

    parsed = parse_email(raw)

    assert parsed.subject == "abc"
    assert parsed.from_name == "Jane"
    assert parsed.text == "xyz\nend"
    assert "\x00" not in parsed.attachments[0].filename


def test_format_flowed_is_unwrapped():
    raw = (
        b"Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes\n\n"
        b"This is one long para \ngraph, wrapped.\n> quoted soft \n> line\n-- \nsig\n"
    )

    parsed = parse_email(raw)

    assert parsed.text == "This is one long paragraph, wrapped.\n> quoted softline\n-- \nsig"


def test_html_only_becomes_readable_text():
    html = (
        "<html><head><title>T</title><style>p{color:red}</style></head><body>"
        "<script>evil()</script><h1>Title</h1><p>One&nbsp;&amp;&#160;two &lt;3 &eacute;</p>"
        "<ol><li>first</li><li>second</li></ol>"
        "<p><a href='https://x.example/a'>link</a> <a href='https://x.example/b'>https://x.example/b</a>"
        " <a href='javascript:alert(1)'>js</a> <a href='mailto:a@b.example'>a@b.example</a></p>"
        "<pre>  indented\n    code</pre>"
        "</body></html>"
    )

    assert html_to_text(html) == (
        "Title\n\nOne & two <3 é\n\n1. first\n2. second\n\n"
        "link (https://x.example/a) https://x.example/b js a@b.example\n\n"
        "  indented\n    code"
    )


def test_plain_text_is_preferred_and_html_kept():
    message = EmailMessage(policy=default_policy)
    message["From"] = "a@example.org"
    message.set_content("plain words")
    message.add_alternative("<p>html <b>words</b></p>", subtype="html")

    parsed = parse_email(message.as_bytes())

    assert parsed.text == "plain words"
    assert parsed.html.strip() == "<p>html <b>words</b></p>"


def test_an_empty_plain_alternative_falls_back_to_the_html():
    message = EmailMessage(policy=default_policy)
    message.set_content("\n")
    message.add_alternative("<p>only here</p>", subtype="html")

    assert parse_email(message.as_bytes()).text == "only here"


def test_attachment_names():
    message = EmailMessage(policy=default_policy)
    message["From"] = "a@example.org"
    message.set_content("see attached")
    message.add_attachment(b"\x00\x01", maintype="application", subtype="octet-stream")
    message.add_attachment(b"GIF89a", maintype="image", subtype="gif", filename="C:\\tmp\\x.gif")
    inner = EmailMessage()
    inner["Subject"] = "Original: the/invoice"
    inner.set_content("inner body")
    message.add_attachment(inner)
    image = EmailMessage()
    image.set_content(b"\x89PNG", maintype="image", subtype="png", cid="<logo@x>")
    del image["Content-Disposition"]
    message.attach(image)
    message.add_attachment(
        b"x", maintype="text", subtype="csv", filename="." * 3 + "a" * 300 + ".csv"
    )

    names = [
        (a.filename, a.inline, a.content_id) for a in parse_email(message.as_bytes()).attachments
    ]

    assert names[0] == ("attachment-1.bin", False, "")
    assert names[1] == ("x.gif", False, "")
    assert names[2] == ("invoice.eml", False, "")
    assert names[3] == ("image-4.png", True, "logo@x")
    assert names[4][0].endswith(".csv")
    assert not names[4][0].startswith(".")
    assert len(names[4][0].encode()) <= 200


def test_attached_message_keeps_its_bytes():
    message = EmailMessage(policy=default_policy)
    message.set_content("fyi")
    inner = EmailMessage()
    inner["Subject"] = "Invoice"
    inner.set_content("inner body")
    message.add_attachment(inner)

    attachment = parse_email(message.as_bytes()).attachments[0]

    assert attachment.content_type == "message/rfc822"
    assert attachment.filename == "Invoice.eml"
    assert b"inner body" in attachment.content


# ---- the new part of a reply ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        # A sign-off is a signature; a thank-you sentence is not.
        (
            "Hi,\n\nThanks, that fixed it!\nBut the PDF is blank.\n\nBest,\nJane",
            "Hi,\n\nThanks, that fixed it!\nBut the PDF is blank.",
        ),
        ("Hi,\n\nCan you check?\n\nBest regards,\nJane Doe\nAcme", "Hi,\n\nCan you check?"),
        ("Fixed.\n\n-- \nJane\n+1 555 0100", "Fixed."),
        ("Fixed.\n\nVon meinem iPhone gesendet", "Fixed."),
        ("Fixed.\n\nGet Outlook for iOS", "Fixed."),
        ("Danke!\n\nAm 01.12.2026 um 10:02 schrieb Helpdesk <s@h.example>:\n> Hallo", "Danke!"),
        ("Merci.\n\nLe mar. 1 déc. 2026 à 10:02, Helpdesk <s@h.example> a écrit :\n> x", "Merci."),
        ("Gracias\n\nEl mar, 1 dic 2026 a las 10:02, Helpdesk escribió:\n> x", "Gracias"),
        ("Yes.\n\n-----Original Message-----\nFrom: Helpdesk\nSent: today\n\nold", "Yes."),
        ("Yes.\n\n-------- Original-Nachricht --------\nVon: x\n\nold", "Yes."),
        ("Yes.\n\nFrom: Helpdesk <s@h.example>\nDate: Tue\nSubject: x\n\nold", "Yes."),
        # Top-posting without an attribution line, then bottom-posting.
        ("Sure.\n\n> old\n> older", "Sure."),
        ("On Tue, Helpdesk wrote:\n> Does it work?\n\nYes, it does.", "Yes, it does."),
        # "wrote:" in a sentence is no attribution line.
        ("The manual says what my colleague wrote:\nclick Export twice.", None),
        # Inline answers keep their questions.
        ("> Which browser?\nFirefox\n> Which version?\n128", None),
        # Code keeps its indentation.
        (
            "It fails here:\n\n    def f():\n        return 1\n\nOn Tue, X wrote:\n> old",
            "It fails here:\n\n    def f():\n        return 1",
        ),
    ],
)
def test_reply_part(text, reply):
    assert reply_part(text) == (text if reply is None else reply)


@pytest.mark.parametrize(
    "html",
    [
        # Thunderbird
        '<p>Works now.</p><div class="moz-cite-prefix">On 12/1/26 10:02 AM, Helpdesk wrote:<br>'
        '</div><blockquote type="cite" cite="mid:x@y">Hi</blockquote>',
        # Outlook desktop (Word HTML): no marker, the From/Sent block decides
        '<div class="WordSection1"><p class="MsoNormal">Works now.<o:p></o:p></p>'
        '<div style="border:none;border-top:solid #E1E1E1 1.0pt"><p class="MsoNormal"><b>From:'
        "</b> Helpdesk &lt;s@h.example&gt;<br><b>Sent:</b> Tuesday<br><b>To:</b> Jane<br>"
        "<b>Subject:</b> Re: x</p></div><p>Hi</p></div>",
        # Outlook on the web, with its signature block
        '<div>Works now.</div><div id="Signature"><p>Jane</p></div><div id="appendonsend"></div>'
        '<hr><div id="divRplyFwdMsg"><b>From:</b> Helpdesk</div><div>Hi</div>',
    ],
)
def test_html_replies(html):
    message = EmailMessage()
    message.set_content(html, subtype="html")

    assert parse_email(message.as_bytes()).reply_text == "Works now."


def test_a_reply_that_is_only_a_quote_keeps_the_text():
    assert reply_part("> only\n> quoted") == "> only\n> quoted"


def test_forward_by_subject_keeps_the_forwarded_mail():
    body = (
        "FYI\n\nFrom: Vendor <v@vendor.example>\nSent: Monday\nTo: me\nSubject: Price\n\nNew price"
    )
    parsed = parse_email(mail(body, subject="FW: Price", from_="a@example.org"))

    assert parsed.is_forward is True
    assert parsed.reply_text.endswith("New price")


def test_pathological_bodies_stay_fast():
    bodies = [
        "Hi\nOn " + "x y " * 20000,
        "Hi\n" + "Thanks, a b\n" * 10000,
        "Hi\n" + "From: a\n" * 10000,
        "Hi\n" + "> On x\n" * 10000,
        "x" * 1_000_000,
    ]
    for body in bodies:
        started = time.monotonic()
        parse_email(mail(body, from_="a@example.org"))
        assert time.monotonic() - started < 5, body[:20]

from knowledge.text import chunk_article, content_hash, plain_text


def test_headings_stay_with_their_text_and_the_title_prefixes_each_chunk():
    chunks = chunk_article(
        title="Refunds",
        summary="When we refund.",
        body="## Yearly plans\n\nWithin 14 days.\n\n## Monthly plans\n\nNo.",
    )

    assert [c.heading for c in chunks] == ["", "Yearly plans", "Monthly plans"]
    assert chunks[1].text == "Refunds › Yearly plans\n\nWithin 14 days."
    assert chunks[0].text == "Refunds\n\nWhen we refund."


def test_long_sections_split_at_paragraphs_keeping_the_heading():
    paragraph = " ".join(["word"] * 80)
    chunks = chunk_article(title="T", body="## Long\n\n" + "\n\n".join([paragraph] * 4))

    assert len(chunks) == 2
    assert all(c.heading == "Long" and c.text.startswith("T › Long") for c in chunks)
    assert all(len(c.text.split()) < 260 for c in chunks)


def test_content_hash_changes_with_any_text_field():
    base = content_hash(title="a", summary="b", body="c")

    assert base == content_hash(title="a", summary="b", body="c")
    assert (
        len(
            {
                base,
                content_hash(title="a2", summary="b", body="c"),
                content_hash(title="a", summary="b2", body="c"),
                content_hash(title="a", summary="b", body="c2"),
            }
        )
        == 4
    )


def test_plain_text_drops_markup():
    assert plain_text("## Title\n\n- **bold** [link](http://x) `code`") == ("Title bold link code")

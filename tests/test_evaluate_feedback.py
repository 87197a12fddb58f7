from __future__ import annotations

import dataclasses

from evaluations import evaluation
from test_evaluate_sections import NBSP, paragraph, table
from varsel.evaluate import Comment, Unsubscribes
from varsel.evaluate_feedback import feedback_section
from varsel.evaluate_view import Comments
from varsel.evaluate_words import Words


def test_feedback_names_channels_and_languages_in_the_language() -> None:
    ev = evaluation()
    feedback = dataclasses.replace(ev.feedback, channels={"brev": 3, "due": 1})
    section = feedback_section(evaluation(feedback=feedback), Words("en"))
    assert paragraph(section.blocks[0]) == (
        "Answers: 25. Usefulness was rated 4.0 out of 5 on average (20 gave a score). "
        "18 found the advice relevant to their business, 4 did not."
    )
    assert table(section.blocks[3]).rows == (
        ("Letter", "3", "12.0%"),
        ("due", "1", "4.0%"),  # a channel the report has no name for keeps its key
    )
    comments = section.blocks[5]
    assert isinstance(comments, Comments)
    assert comments.items == (("2 April 2025, Nynorsk, usefulness 4", "Nyttig <b>takk</b>"),)


def test_feedback_says_how_many_comments_are_left_out() -> None:
    ev = evaluation()
    unscored = Comment("2025-04-02T08:00:00Z", "se", None, "Giitu")
    feedback = dataclasses.replace(ev.feedback, comments=(unscored,), comments_total=600)
    section = feedback_section(evaluation(feedback=feedback), Words("nb"))
    assert paragraph(section.blocks[4]).startswith(
        "Fritekst fra svarene (600 i alt, de 1 nyeste vises)."
    )
    comments = section.blocks[5]
    assert isinstance(comments, Comments)
    assert comments.items == (("2. april 2025, se", "Giitu"),)


def test_feedback_without_answers_is_one_line() -> None:
    ev = evaluation()
    feedback = dataclasses.replace(ev.feedback, answers=0)
    section = feedback_section(evaluation(feedback=feedback), Words("nb"))
    assert paragraph(section.blocks[0]) == "Ingen svar ennå."
    # What else recipients did is shown all the same (the responses' table).
    assert table(section.blocks[1]).caption == "Svar fra mottakerne"
    assert len(section.blocks) == 2


def test_the_responses_count_unsubscribes_with_their_unit_in_nynorsk() -> None:
    unsubscribed = Unsubscribes(emails=1_234, address=1_000, organisation=234, one_click=900)
    section = feedback_section(evaluation(unsubscribes=unsubscribed), Words("nn"))
    rows = {row[0]: row[1:] for row in table(section.blocks[1]).rows}
    assert rows["Melde seg av"] == (
        f"1{NBSP}234 (adressa: 1{NBSP}000, verksemdene: 234, med eitt klikk: 900)",
        "e-postar",
    )

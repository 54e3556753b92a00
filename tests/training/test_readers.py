"""Readers: every supported format, malformed rows and malformed files."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from training.errors import DataError
from training.readers import MALFORMED, NOT_QA, read_jokes, split_question


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def test_qa_csv_reads_ids_questions_answers_and_quoted_fields(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "qa.csv",
        [
            ["ID", "Question", "Answer"],
            ["7", "Why, oh why?", 'Because "quotes", commas\nand newlines.'],
            ["8", "What?", "That."],
        ],
    )
    result = read_jokes(path)
    assert result.format == "qa_csv"
    assert result.rows == 2 and result.unreadable == 0
    assert [(j.id, j.question) for j in result.jokes] == [("7", "Why, oh why?"), ("8", "What?")]
    assert result.jokes[0].answer == 'Because "quotes", commas\nand newlines.'
    assert result.jokes[0].score is None


def test_csv_rows_with_wrong_field_counts_are_counted_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text(
        "ID,Question,Answer\n1,Q one?,A one\n2,only two\n3,Q?,A,extra\n4,Q four?,A four\n", encoding="utf-8"
    )
    result = read_jokes(path)
    assert [j.id for j in result.jokes] == ["1", "4"]
    assert result.rows == 4
    assert result.skipped == {MALFORMED: 2}


def test_csv_score_column_and_optional_id(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "derived.csv",
        [
            ["rjokes_split", "rjokes_log_score", "Question", "Answer"],
            ["dev", "3", "Q?", "A"],
            ["dev", "x", "Q2?", "B"],
        ],
    )
    jokes = read_jokes(path).jokes
    assert [j.score for j in jokes] == [3.0, None]
    assert [j.id for j in jokes] == ["1", "2"]


def test_ratings_export_csv_and_jsonl(tmp_path: Path) -> None:
    csv_path = write_csv(
        tmp_path / "ratings.csv",
        [["setup", "punchline", "version", "score"], ["Why?", "Because.", "v1", "0.75"]],
    )
    result = read_jokes(csv_path)
    assert result.format == "ratings"
    assert result.jokes[0].question == "Why?" and result.jokes[0].score == 0.75

    jsonl = tmp_path / "ratings.jsonl"
    jsonl.write_text(
        json.dumps({"setup": "Who?", "punchline": "Me.", "score": 2})
        + "\n\nnot json\n"
        + json.dumps({"setup": "What?", "punchline": None})
        + "\n",
        encoding="utf-8",
    )
    result = read_jokes(jsonl)
    assert result.format == "ratings"
    assert [(j.question, j.answer, j.score) for j in result.jokes] == [("Who?", "Me.", 2.0)]
    assert result.skipped == {MALFORMED: 2}


def test_reddit_json_keeps_question_titles_with_scores(tmp_path: Path) -> None:
    path = tmp_path / "reddit_jokes.json"
    path.write_text(
        json.dumps(
            [
                {"title": "What's brown and sticky?", "body": "A stick.", "id": "a1", "score": 12},
                {"title": "I went to America....", "body": "and sued a shop.", "id": "a2", "score": 0},
                {"title": "Broken", "id": "a3"},
            ]
        ),
        encoding="utf-8",
    )
    result = read_jokes(path)
    assert result.format == "reddit_json"
    assert [(j.id, j.answer, j.score) for j in result.jokes] == [("a1", "A stick.", 12.0)]
    assert result.skipped == {NOT_QA: 1, MALFORMED: 1}


def test_rjokes_tsv_gz_with_escapes_splits_at_first_question_mark(tmp_path: Path) -> None:
    path = tmp_path / "dev.tsv.gz"
    with gzip.open(path, "wt", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\", lineterminator="\n")
        writer.writerow([3, 'Why did the "tab\tchicken" cross? To get to the other side'])
        writer.writerow([1, "A man walks into a bar. Ouch."])
        writer.writerow(["x", "What? No."])
    result = read_jokes(path)
    assert result.format == "rjokes_tsv"
    assert [(j.question, j.answer, j.score) for j in result.jokes] == [
        ('Why did the "tab\tchicken" cross?', "To get to the other side", 3.0)
    ]
    assert result.skipped == {NOT_QA: 1, MALFORMED: 1}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Why? Because.", ("Why?", "Because.")),
        ("No question here.", None),
        ("Trailing? ", None),
        ("? starts with it", None),
    ],
)
def test_split_question(text: str, expected: tuple[str, str] | None) -> None:
    assert split_question(text) == expected


def test_missing_file_and_directory_raise_one_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_jokes(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="not a file"):
        read_jokes(tmp_path)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("cols.csv", "id,joke\n1,haha\n", "expected ID,Question,Answer"),
        ("empty.csv", "", "is empty"),
        ("latin.csv", "ID,Question,Answer\n1,Caf\xe9?,Yes\n".encode("latin-1"), "not UTF-8"),
        ("bad.json", '[{"title": "x?", ', "not valid JSON"),
        ("obj.json", '{"a": 1}', "expected a JSON list"),
        ("lines.jsonl", '{"a": 1}\n{"b": 2}\n', "no line is a JSON object"),
        ("notrjokes.tsv", "hello\tworld\n", "expected rJokes TSV"),
        ("broken.gz.csv", b"\x1f\x8b\x08garbage", "damaged gzip"),
    ],
)
def test_malformed_files_raise_data_error(
    tmp_path: Path, name: str, content: str | bytes, message: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message) as info:
        read_jokes(path)
    assert "\n" not in str(info.value)


def test_content_sniffing_without_extension(tmp_path: Path) -> None:
    path = tmp_path / "jokes"
    path.write_text(json.dumps([{"question": "Q?", "answer": "A"}]), encoding="utf-8")
    assert [j.answer for j in read_jokes(path).jokes] == ["A"]


@pytest.mark.shared_data
def test_real_files(shared_data: Path) -> None:
    kaggle = read_jokes(shared_data / "qa_jokes" / "qa_jokes_kaggle_original.csv")
    assert kaggle.format == "qa_csv" and kaggle.rows == 38_269 and len(kaggle.jokes) == 38_269
    by_id = {j.id: j for j in kaggle.jokes}
    assert by_id["3285"].question == "What do The Sixth Sense and Titanic have in common?"
    reddit = read_jokes(shared_data / "taivop_subset" / "reddit_jokes_first1395.json")
    assert reddit.rows == 1_395 and all(j.question.strip().endswith("?") for j in reddit.jokes)
    assert reddit.jokes and reddit.skipped[NOT_QA] == 1_395 - len(reddit.jokes)

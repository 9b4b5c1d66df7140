"""Readers of user input: texts for `medeir embed`, documents for `medeir index`, and their error messages."""

import json

import pytest

from medeir.documents import Document, load_documents, read_text, read_texts


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_text_lines_skip_blank_lines_and_keep_line_numbers_as_ids(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"\xef\xbb\xbffirst line\r\n\n  \nthird text\nlast")
    ids, texts = read_texts(path)
    assert ids == ["1", "4", "5"]
    assert texts == ["first line", "third text", "last"]


def test_jsonl_field_and_id_field_are_selectable(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"doc": "a", "body": "alpha"}, {"doc": 7, "body": "beta"}])
    assert read_texts(path, field="body", id_field="doc") == (["a", "7"], ["alpha", "beta"])
    assert read_texts(path, field="body") == (["1", "2"], ["alpha", "beta"])


@pytest.mark.parametrize(
    ("record", "error"),
    [
        ({"body": "beta"}, r"in\.jsonl:2: no value for id field 'doc' \(fields: body\)"),
        ({"doc": None, "body": "beta"}, r"in\.jsonl:2: no value for id field 'doc'"),
        ({"doc": [1], "body": "beta"}, r"in\.jsonl:2: id field 'doc' is list, expected a string or integer"),
        ({"doc": True, "body": "beta"}, r"in\.jsonl:2: id field 'doc' is bool"),
        ({"doc": " ", "body": "beta"}, r"in\.jsonl:2: id field 'doc' is empty"),
    ],
)
def test_a_named_id_field_is_required_in_every_record(tmp_path, record, error):
    """A misspelt or partly missing --id-field must not fall back to line numbers (ids would silently mismatch)."""
    path = write_jsonl(tmp_path / "in.jsonl", [{"doc": "a", "body": "alpha"}, record])
    with pytest.raises(ValueError, match=error):
        read_texts(path, field="body", id_field="doc")
    with pytest.raises(ValueError, match=error):
        load_documents(path, text_field="body", id_field="doc")
    csv_path = tmp_path / "in.csv"
    csv_path.write_text("key,text\nk1,alpha\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"in\.csv:1: no column 'id' \(columns: key, text\)"):
        read_texts(csv_path, id_field="id")


def test_csv_and_tsv_read_the_named_column_with_line_numbers(tmp_path):
    csv_path = tmp_path / "in.csv"
    csv_path.write_text('id,text\nx1,"a, quoted\nmultiline text"\nx2,plain\n', encoding="utf-8")
    assert read_texts(csv_path) == (["2", "4"], ["a, quoted\nmultiline text", "plain"])
    assert read_texts(csv_path, id_field="id")[0] == ["x1", "x2"]
    tsv_path = tmp_path / "in.tsv"
    tsv_path.write_text("name\tsentence\nn\tone, two\n", encoding="utf-8")
    assert read_texts(tsv_path, field="sentence") == (["2"], ["one, two"])
    with pytest.raises(ValueError, match=r"in\.tsv:1: no column 'text' \(columns: name, sentence\)"):
        read_texts(tsv_path)


def test_invalid_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("ok\nstill ok\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.txt:3: invalid UTF-8"):
        read_texts(path)
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_bytes(b'{"text": "fine"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: invalid UTF-8"):
        read_texts(jsonl)


def test_malformed_json_line_names_file_and_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"text": "one"}\n\n{"text": "two",}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.jsonl:3: invalid JSON"):
        read_texts(path)
    path.write_text('{"text": "one"}\n["not", "an", "object"]\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.jsonl:2: expected a JSON object"):
        load_documents(path)


def test_missing_or_mistyped_text_field_names_the_line_and_the_fields(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"text": "ok"}, {"body": "no text", "id": 3}])
    with pytest.raises(ValueError, match=r"in\.jsonl:2: no 'text' field \(fields: body, id\)"):
        load_documents(path)
    write_jsonl(path, [{"text": 5}])
    with pytest.raises(ValueError, match=r"in\.jsonl:1: field 'text' is int, expected a string"):
        read_texts(path)


def test_empty_inputs_are_errors(tmp_path):
    (tmp_path / "blank.txt").write_text("\n \n", encoding="utf-8")
    with pytest.raises(ValueError, match="no texts found"):
        read_texts(tmp_path / "blank.txt")
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "empty.md").write_text("  \n", encoding="utf-8")
    (folder / "ignored.pdf").write_bytes(b"%PDF")
    with pytest.raises(ValueError, match=r"corpus: no \.txt or \.md file with text \(empty corpus\)"):
        load_documents(folder)
    with pytest.raises(ValueError, match="empty corpus"):
        load_documents(write_jsonl(tmp_path / "e.jsonl", []))


def test_missing_path_and_folder_given_as_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt: no such file or directory"):
        read_texts(tmp_path / "nope.txt")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        read_text(tmp_path)


def test_folder_documents_use_relative_paths_and_skip_hidden_and_blank_files(tmp_path, caplog):
    (tmp_path / "b").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / "a.txt").write_text("Aspirin.", encoding="utf-8")
    (tmp_path / "b" / "c.md").write_text("# Insulin\nlowers glucose", encoding="utf-8")
    (tmp_path / "b" / "blank.txt").write_text("", encoding="utf-8")
    (tmp_path / ".git" / "x.txt").write_text("hidden", encoding="utf-8")
    (tmp_path / "notes.csv").write_text("text\nnot a document\n", encoding="utf-8")
    documents = load_documents(tmp_path)
    assert documents == [
        Document(id="a.txt", text="Aspirin.", source="a.txt"),
        Document(id="b/c.md", text="# Insulin\nlowers glucose", source="b/c.md"),
    ]
    assert "skipped 1 blank document(s)" in caplog.text


def test_jsonl_documents_with_title_source_and_fallbacks(tmp_path):
    first = {"id": "d1", "title": "Asthma", "text": "Inhaled steroids.", "source": "nhs"}
    path = write_jsonl(tmp_path / "kb.jsonl", [first, {"text": "No id or title."}])
    assert load_documents(path) == [Document("d1", "Inhaled steroids.", "Asthma", "nhs"),
                                    Document("kb.jsonl:2", "No id or title.", "", "kb.jsonl:2")]
    write_jsonl(path, [{"_id": "b", "heading": "H", "body": "Custom fields."}])
    assert load_documents(path, text_field="body", id_field="_id", title_field="heading") == [
        Document("b", "Custom fields.", "H", "kb.jsonl:1")]
    with pytest.raises(ValueError, match=r"kb\.jsonl:1: no 'text' field"):
        load_documents(path)


def test_duplicate_ids_name_both_lines(tmp_path):
    path = write_jsonl(tmp_path / "dup.jsonl", [{"id": "x", "text": "a"}, {"id": "y", "text": "b"},
                                                 {"id": "x", "text": "c"}])
    with pytest.raises(ValueError, match=r"dup\.jsonl:3: duplicate id 'x' \(first used on line 1\)"):
        load_documents(path)


def test_unsupported_document_file_type(tmp_path):
    path = tmp_path / "doc.pdf"
    path.write_bytes(b"%PDF")
    with pytest.raises(ValueError, match="expected a folder of .txt/.md files or a .jsonl"):
        load_documents(path)

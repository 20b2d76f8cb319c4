"""The CSV tables and folder pairing of ``lipsim_tm.data.tables``: what is read, what is left out, and the errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from lipsim_tm.data.tables import pair_folders, read_pairs, read_triplets


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _touch_images(root: Path, *names: str) -> None:
    for name in names:
        _write(root / name, "not decoded here")


def test_pairs_resolve_relative_to_the_table_and_keep_absolute_paths(tmp_path: Path) -> None:
    absolute = tmp_path / "elsewhere" / "c.png"
    table = _write(tmp_path / "lists" / "pairs.csv", f"image_a,image_b\na.png, sub/b.png\n{absolute},a.png\n")
    listing = read_pairs(table)
    assert [item.names for item in listing.items] == [("a.png", "sub/b.png"), (str(absolute), "a.png")]
    assert listing.items[0].paths == (tmp_path / "lists" / "a.png", tmp_path / "lists" / "sub" / "b.png")
    assert listing.items[1].paths[0] == absolute
    assert [item.line for item in listing.items] == [2, 3]
    assert listing.left_out == {}


def test_extra_columns_and_column_order_do_not_matter(tmp_path: Path) -> None:
    table = _write(tmp_path / "p.csv", "note,image_b,image_a\nx,b.png,a.png\n")
    assert read_pairs(table).items[0].names == ("a.png", "b.png")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("left,right\na.png,b.png\n", "missing ['image_a', 'image_b'], found ['left', 'right']"),
        ("image_a,image_b\n", "holds no rows after its header"),
        ("image_a,image_b\na.png,\n", ":2: column image_b is empty"),
        ("image_a,image_b\na.png\n", ":2: column image_b is empty"),
    ],
)
def test_bad_pair_tables_name_table_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    table = _write(tmp_path / "p.csv", text)
    with pytest.raises(ValueError, match=r"p\.csv") as caught:
        read_pairs(table)
    assert message in str(caught.value)


def test_a_folder_or_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match="expected a CSV table, got the folder"):
        read_pairs(tmp_path)
    with pytest.raises(FileNotFoundError, match="table not found"):
        read_triplets(tmp_path / "absent.csv")


def test_triplets_read_targets_and_default_to_none(tmp_path: Path) -> None:
    with_target = _write(tmp_path / "t.csv", "ref,img0,img1,target\nr.png,0.png,1.png,0.75\nr.png,0.png,1.png,1\n")
    assert [item.target for item in read_triplets(with_target).items] == [0.75, 1.0]
    without = _write(tmp_path / "u.csv", "ref,img0,img1\nr.png,0.png,1.png\n")
    (item,) = read_triplets(without).items
    assert item.target is None
    assert item.names == ("r.png", "0.png", "1.png")


@pytest.mark.parametrize(
    ("cell", "message"),
    [("1.5", "must be in [0, 1], got '1.5'"), ("nan", "must be in [0, 1]"), ("half", "must be a number, got 'half'")],
)
def test_bad_targets_are_refused_with_their_line(tmp_path: Path, cell: str, message: str) -> None:
    table = _write(tmp_path / "t.csv", f"ref,img0,img1,target\nr.png,0.png,1.png,0\nr.png,0.png,1.png,{cell}\n")
    with pytest.raises(ValueError, match=r"t\.csv:3: column target") as caught:
        read_triplets(table)
    assert message in str(caught.value)


def test_min_votes_drops_and_lists_rows(tmp_path: Path) -> None:
    table = _write(
        tmp_path / "t.csv",
        "ref,img0,img1,target,votes\nr,a,b,0.5,6\nr,a,b,1,1\nr,a,b,0,7\nr,a,b,0.2,5\n",
    )
    listing = read_triplets(table, min_votes=6)
    assert [item.line for item in listing.items] == [2, 4]
    assert listing.left_out == {"votes": ["line 3", "line 5"]}
    assert len(read_triplets(table).items) == 4  # no threshold: every row


def test_min_votes_errors(tmp_path: Path) -> None:
    no_votes = _write(tmp_path / "t.csv", "ref,img0,img1,target\nr,a,b,1\n")
    with pytest.raises(ValueError, match="--min-votes needs a votes column"):
        read_triplets(no_votes, min_votes=2)
    few = _write(tmp_path / "v.csv", "ref,img0,img1,votes\nr,a,b,1\nr,a,b,2\n")
    with pytest.raises(ValueError, match=r"no triplet has at least 3 votes \(2 rows dropped\)"):
        read_triplets(few, min_votes=3)
    with pytest.raises(ValueError, match="votes must be in"):
        read_triplets(_write(tmp_path / "w.csv", "ref,img0,img1,votes\nr,a,b,-1\n"), min_votes=1)
    with pytest.raises(ValueError, match="min_votes"):
        read_triplets(few, min_votes=0)


def test_folders_pair_by_relative_path_and_list_the_rest(tmp_path: Path) -> None:
    _touch_images(tmp_path / "a", "1.png", "sub/2.jpg", "only_a.png", "notes.txt")
    _touch_images(tmp_path / "b", "1.png", "sub/2.jpg", "only_b.webp", "2.jpg")
    listing = pair_folders(tmp_path / "a", tmp_path / "b")
    assert [item.paths for item in listing.items] == [
        (tmp_path / "a" / "1.png", tmp_path / "b" / "1.png"),
        (tmp_path / "a" / "sub" / "2.jpg", tmp_path / "b" / "sub" / "2.jpg"),
    ]
    assert listing.left_out == {
        f"only in {tmp_path / 'a'}": ["only_a.png"],
        f"only in {tmp_path / 'b'}": ["2.jpg", "only_b.webp"],
    }


def test_folders_without_a_common_name_are_refused(tmp_path: Path) -> None:
    _touch_images(tmp_path / "a", "1.png")
    _touch_images(tmp_path / "b", "2.png")
    with pytest.raises(ValueError, match="hold no image of the same name"):
        pair_folders(tmp_path / "a", tmp_path / "b")


def test_a_damaged_table_is_named(tmp_path: Path) -> None:
    table = tmp_path / "pairs.csv"
    table.write_bytes(bytes(range(256)) * 4)  # not text
    with pytest.raises(ValueError, match=r"pairs\.csv is not a readable CSV table"):
        read_pairs(table)

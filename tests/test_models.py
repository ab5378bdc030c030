"""Request validation (strict) and answer parsing (lenient)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from sora_widgets.core.errors import MalformedResponseError, ValidationError
from sora_widgets.core.models import TaskSnapshot, VideoRequest


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"prompt": None}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "x", "aspect_ratio": "4:3"}, "aspect_ratio"),
        ({"prompt": "x", "aspect_ratio": "16:10"}, "aspect_ratio"),
        ({"prompt": "x", "duration": 10}, "duration"),
        ({"prompt": "x", "duration": True}, "duration"),
        ({"prompt": "x", "duration": "12"}, "duration"),
        ({"prompt": "x", "image": "not a url"}, "image"),
        ({"prompt": "x", "image": "ftp://host/a.png"}, "image"),
        ({"prompt": "x", "image": "javascript:alert(1)"}, "image"),
        ({"prompt": "x", "image": "data:text/html;base64,PHNjcmlwdD4="}, "image"),
        ({"prompt": "x", "image": ["https://ok/a.png", "nope"]}, "image"),
        ({"prompt": "x", "model": "  "}, "model"),
        ({"prompt": "x" * 10_001}, "prompt"),
    ],
)
def test_bad_input_names_the_field(kwargs: dict[str, object], field: str) -> None:
    prompt = kwargs.pop("prompt")
    with pytest.raises(ValidationError) as info:
        VideoRequest.create(prompt, **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert field.split("_")[0] in str(info.value)


def test_valid_request_body_matches_the_contract() -> None:
    req = VideoRequest.create("a cat", aspect_ratio="9:16", image="https://cdn.example/p.jpg")
    assert req.to_json() == {"model": "sora-2", "prompt": "a cat", "aspect_ratio": "9:16",
                             "duration": 12, "image": "https://cdn.example/p.jpg"}
    many = VideoRequest.create(None, image=["https://a/1.png", "https://a/2.png"])
    assert many.to_json()["image"] == ["https://a/1.png", "https://a/2.png"]
    assert "prompt" not in many.to_json()


def test_fingerprint_is_the_cache_identity() -> None:
    a = VideoRequest.create("a cat ", aspect_ratio="16:9")
    b = VideoRequest.create("a cat")
    c = VideoRequest.create("a cat", aspect_ratio="9:16")
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()
    assert VideoRequest.from_json(a.to_json()) == a


def test_local_image_becomes_a_data_uri(tmp_path: Path) -> None:
    png = tmp_path / "frame.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    req = VideoRequest.create("x", image=str(png))
    assert req.images[0].startswith("data:image/png;base64,")
    assert base64.b64decode(req.images[0].split(",", 1)[1]) == png.read_bytes()
    text = tmp_path / "notes.txt"
    text.write_text("hi")
    with pytest.raises(ValidationError):
        VideoRequest.create("x", image=text)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"task_id": "v_1", "status": "queued"}, ("v_1", "queued", None)),
        ({"id": "v_2", "status": "in_progress", "progress": "42"}, ("v_2", "in_progress", 42)),
        ({"id": "v_3", "status": "in_progress", "progress": "57%"}, ("v_3", "in_progress", 57)),
        ({"id": "v_4", "status": "in_progress"}, ("v_4", "in_progress", None)),
        ({"id": "v_5", "status": "rendering", "progress": 3.7}, ("v_5", "rendering", 3)),
        ({"id": "v_6", "status": "in_progress", "progress": 250}, ("v_6", "in_progress", 100)),
        # No status word: None (never our "unknown", which means a lost submit answer).
        ({"id": "v_7", "status": None, "progress": [1]}, ("v_7", None, None)),
        ({"id": 123, "status": "completed"}, ("123", "completed", 100)),
    ],
)
def test_snapshot_parsing_is_lenient(payload: dict[str, object],
                                     expected: tuple[str, str, int | None]) -> None:
    snap = TaskSnapshot.parse({**payload, "brand_new_field": {"x": 1}})
    assert (snap.id, snap.status, snap.progress) == expected


def test_unknown_status_is_kept_not_guessed() -> None:
    snap = TaskSnapshot.parse({"id": "v", "status": "moderating"})
    assert snap.status == "moderating" and not snap.is_final and snap.relay_status is None
    for word in ("unknown", "UNKNOWN", "mystery", ""):
        assert TaskSnapshot.parse({"id": "v", "status": word}).relay_status is None
    assert TaskSnapshot.parse({"id": "v", "status": "succeeded"}).is_final


def test_error_object_and_failed_status() -> None:
    snap = TaskSnapshot.parse({"id": "v", "status": "failed",
                               "error": {"message": "policy", "code": "content_policy"}})
    assert snap.is_final and snap.error is not None
    assert (snap.error.message, snap.error.code) == ("policy", "content_policy")
    assert TaskSnapshot.parse({"id": "v", "status": "failed", "error": "boom"}).error.message \
        == "boom"  # type: ignore[union-attr]


@pytest.mark.parametrize("payload", [None, [], "text", 3, {"status": "queued"}, {"id": ""}])
def test_answers_without_an_id_are_malformed(payload: object) -> None:
    with pytest.raises(MalformedResponseError):
        TaskSnapshot.parse(payload)

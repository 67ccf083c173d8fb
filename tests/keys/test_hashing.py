import re

from keys.hashing import display_prefix, generate_key, hash_key, split_legacy_key


def test_generated_keys_have_the_fastgpt_format_and_do_not_repeat():
    keys = {generate_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert re.fullmatch(r"fastgpt-[A-Za-z0-9]{48}", key)


def test_hash_is_sha256_hex_and_matches_only_its_key():
    key = generate_key()
    digest = hash_key(key)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert key not in digest
    assert hash_key(key) == digest
    assert hash_key(key[:-1] + ("a" if key[-1] != "a" else "b")) != digest


def test_display_prefix_reveals_only_a_few_characters():
    key = generate_key()
    assert display_prefix(key) == key[:14]
    assert len(display_prefix(key)) < len(key) // 3


def test_legacy_form_splits_off_the_app_id():
    assert split_legacy_key("fastgpt-abc123-app42") == ("fastgpt-abc123", "app42")
    assert split_legacy_key("fastgpt-abc123") == ("fastgpt-abc123", None)
    assert split_legacy_key("fastgpt-abc-def-ghi") == ("fastgpt-abc-def-ghi", None)
    assert split_legacy_key("fastgpt--app") == ("fastgpt--app", None)

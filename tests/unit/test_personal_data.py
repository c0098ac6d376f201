import pytest

from app.domain.personal_data import mask_phone
from app.encryption import SecretBox


@pytest.mark.parametrize("phone,masked", [
    ("13800000000", "138****0000"),
    ("+85291234567", "+85****4567"),
    ("1234567", "12****67"),
    ("123", "****"),
])
def test_phones_are_masked(phone, masked):
    assert mask_phone(phone) == masked


def test_secret_box_round_trips_and_hides_the_plaintext():
    box = SecretBox("k" * 40)
    sealed = box.encrypt("13800000000")
    assert "13800000000" not in sealed
    assert box.decrypt(sealed) == "13800000000"


def test_secret_box_refuses_another_keys_ciphertext():
    sealed = SecretBox("a" * 40).encrypt("session-key")
    with pytest.raises(ValueError):
        SecretBox("b" * 40).decrypt(sealed)


def test_lookup_hash_is_stable_and_keyed():
    assert SecretBox("a" * 40).lookup_hash("138") == SecretBox("a" * 40).lookup_hash("138")
    assert SecretBox("a" * 40).lookup_hash("138") != SecretBox("b" * 40).lookup_hash("138")

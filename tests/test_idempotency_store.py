"""Idempotency-Key records in both stores: claim once, answer, replay, release, expire."""

from __future__ import annotations

from memstore.stores.idempotency import IdempotentAnswer


def test_a_key_is_claimed_once_and_then_holds_its_answer(store):
    assert store.claim_request("acct_a", "k1", "fp", 100.0, 40.0)
    assert not store.claim_request("acct_a", "k1", "fp", 101.0, 41.0)
    assert store.find_request("acct_a", "k1") == IdempotentAnswer("fp", None, None)
    store.answer_request("acct_a", "k1", 201, '{"id": "mem_1"}')
    assert store.find_request("acct_a", "k1") == IdempotentAnswer("fp", 201, '{"id": "mem_1"}')
    assert not store.claim_request("acct_a", "k1", "other", 500.0, 440.0)  # answered: kept


def test_keys_belong_to_one_account(store):
    assert store.claim_request("acct_a", "k", "fp-a", 100.0, 40.0)
    assert store.claim_request("acct_b", "k", "fp-b", 100.0, 40.0)
    assert store.find_request("acct_b", "k").fingerprint == "fp-b"
    assert store.find_request("acct_a", "nope") is None


def test_a_released_or_abandoned_claim_can_be_taken_again(store):
    assert store.claim_request("acct_a", "k", "fp", 100.0, 40.0)
    store.release_request("acct_a", "k")
    assert store.claim_request("acct_a", "k", "fp", 101.0, 41.0)
    assert not store.claim_request("acct_a", "k", "fp", 150.0, 90.0)  # still running
    assert store.claim_request("acct_a", "k", "fp2", 200.0, 140.0)  # its request died
    assert store.find_request("acct_a", "k").fingerprint == "fp2"


def test_purge_drops_keys_older_than_the_window(store):
    store.claim_request("acct_a", "old", "fp", 100.0, 40.0)
    store.claim_request("acct_a", "new", "fp", 300.0, 240.0)
    assert store.purge_requests(200.0) == 1
    assert store.find_request("acct_a", "old") is None
    assert store.find_request("acct_a", "new") is not None

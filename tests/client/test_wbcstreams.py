"""The write-back cache's bookkeeping per MDT (client/wbcstreams.py): which records each MDT has
yet to apply, what the journal may forget once MDTs commit, and which records reached their MDT."""

from __future__ import annotations

from lustrepy.client.wbcstreams import Stream, ack_point, applied


def _streams() -> tuple[Stream, Stream]:
    s0, s1 = Stream(0), Stream(1)
    for seq in (1, 2, 5, 6):
        s0.live.append(seq)
    for seq in (3, 4, 7):
        s1.live.append(seq)
    return s0, s1


def test_unsent_counts_each_mdts_records_past_what_it_applied() -> None:
    s0, s1 = _streams()
    assert (s0.unsent(), s1.unsent()) == (4, 3)
    s0.applied, s1.applied = 5, 4           # MDT0 applied 1, 2, 5; MDT1 applied 3, 4
    assert (s0.unsent(), s1.unsent()) == (1, 1)
    assert [applied([s0, s1], q) for q in range(1, 9)] == [True, True, True, True, True, False, False, True]


def test_the_journal_forgets_only_up_to_the_oldest_record_some_mdt_has_not_committed() -> None:
    s0, s1 = _streams()
    assert ack_point([s0, s1], next_seq=8) == 0
    s0.applied = 6
    s0.uncommitted = [(2, 10), (6, 12)]
    s0.committed(11)                        # MDT0 committed transno 10: records up to 2
    assert s0.live == [5, 6] and ack_point([s0, s1], 8) == 2
    s1.applied = 7
    s1.uncommitted = [(7, 30)]
    s1.committed(30)                        # MDT1 committed all it applied
    assert s1.live == [] and ack_point([s0, s1], 8) == 4      # 5 and 6 wait for MDT0
    s0.committed(12)
    assert s0.live == [] and ack_point([s0, s1], 8) == 7      # everything journalled so far

"""FollowingCopies: the frozen copies APPO's target policy and the MMD magnet are made of."""

import torch
from torch import nn

from marl_arena.learners.target_networks import FollowingCopies


def _same(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


def test_a_copy_follows_its_network_every_interval_updates_and_restarts_with_it():
    torch.manual_seed(0)
    network = nn.Linear(3, 2)
    copies = FollowingCopies({"m": network}, interval=3, tau=0.5)
    start = [p.clone() for p in copies["m"].parameters()]
    assert not any(p.requires_grad for p in copies["m"].parameters())
    with torch.no_grad():
        network.weight.add_(1.0)
    assert [copies.count_update("m", network) for _ in range(3)] == [False, False, True]
    assert copies.updates == {"m": 3}
    assert torch.allclose(copies["m"].weight, 0.5 * start[0] + 0.5 * network.weight)  # tau 0.5, once
    with torch.no_grad():
        network.weight.add_(1.0)
    copies.restart("m", network)
    assert copies.updates == {"m": 0} and _same(copies["m"], network)


def test_update_counts_round_trip_and_ignore_unknown_module_ids():
    copies = FollowingCopies({"m": nn.Linear(2, 2)}, interval=2)
    copies.set_updates({"m": 5, "gone": 7})
    assert copies.updates == {"m": 5}
    assert copies.count_update("m", nn.Linear(2, 2)) is True  # the 6th update: due at interval 2

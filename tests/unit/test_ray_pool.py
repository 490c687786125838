"""The Ray actor pool's size and shares (indexers/ray_runner.py plan_pool) and the addresses
`--ray` takes: pure functions, no Ray instance."""

from __future__ import annotations

import pytest

from indexers.ray_runner import check_address, plan_pool
from search.errors import TroveError


def test_a_two_core_machine_leaves_ray_data_a_share():
    # Two actors at one CPU each hung a 2-core run ("requested 3/2 CPU").
    plan = plan_pool([(2.0, 0.0)])
    assert plan.actors == 2 and plan.gpus_per_actor == 0
    assert plan.actors * plan.cpus_per_actor <= 2.0 - 0.5


def test_large_machines_get_actors_of_a_few_cpus():
    plan = plan_pool([(16.0, 0.0), (16.0, 0.0)])
    assert plan.actors == 8 and plan.cpus_per_actor == pytest.approx(15 / 4)


def test_every_actor_fits_the_smallest_machine():
    plan = plan_pool([(64.0, 0.0), (4.0, 0.0)])
    # 4 CPUs keep one free: the small machine's one actor has at most 3.
    assert plan.cpus_per_actor <= 3.0
    assert plan.actors == 16 + 1


def test_one_actor_per_gpu():
    plan = plan_pool([(32.0, 4.0), (8.0, 1.0), (4.0, 0.0)])
    assert plan.actors == 5 and plan.gpus_per_actor == 1.0
    assert plan.cpus_per_actor == 4.0  # CPUS_PER_ACTOR; each GPU machine has 7 or more free


def test_a_cluster_without_cpus_is_refused():
    with pytest.raises(TroveError, match="no CPU or GPU"):
        plan_pool([(0.0, 0.0)])


@pytest.mark.parametrize("address", ["local", "auto", "ray://head:10001", "10.0.0.5:6379"])
def test_cluster_addresses_are_taken(address):
    assert check_address(address) == address


@pytest.mark.parametrize("address", ["/home/me/Pictures", "photos", "head:port"])
def test_anything_else_says_what_ray_takes(address):
    with pytest.raises(TroveError, match="--ray takes a cluster address"):
        check_address(address)

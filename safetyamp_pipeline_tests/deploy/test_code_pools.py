"""The instance's pool default (limit 1 for every pool without its own limit) is the
``safetyamp_api`` limit only because the code uses no other pool; this keeps that true."""

from __future__ import annotations

from safetyamp_pipeline_tests.deploy.paths import HELM_VALUES, LOCAL_INSTANCE_YAML, load_yaml


def _pools_in_code() -> set[str]:
    from safetyamp_pipeline.definitions import defs

    definitions = defs()
    pools: set[str] = set()
    for job in definitions.resolve_all_job_defs():
        pools |= {op.pool for op in job.graph.iterate_op_defs() if op.pool}
    for assets_def in definitions.resolve_asset_graph().assets_defs:
        node = assets_def.node_def
        ops = node.iterate_op_defs() if hasattr(node, "iterate_op_defs") else [node]
        pools |= {op.pool for op in ops if op.pool}
    return pools


def test_safetyamp_api_is_the_only_pool_so_the_default_limit_is_its_limit() -> None:
    assert _pools_in_code() == {"safetyamp_api"}
    assert load_yaml(LOCAL_INSTANCE_YAML)["concurrency"]["pools"]["default_limit"] == 1
    assert load_yaml(HELM_VALUES)["concurrency"]["pools"]["defaultLimit"] == 1

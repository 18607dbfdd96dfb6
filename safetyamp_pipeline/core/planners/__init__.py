"""One planner per SafetyAmp entity; `core.plan.plan_entity` dispatches to them."""

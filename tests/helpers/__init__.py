"""Helpers shared by end-to-end, load and chaos tests: a running pipeline (`tests.helpers.pipeline`) and the
invariants every scenario must leave true (`tests.helpers.invariants`). Import them; never copy them."""

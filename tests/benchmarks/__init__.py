"""The benchmark scripts of benchmarks/ at tiny budgets, and their table builders."""

"""Reference data shipped by packages (SimBench standard load profiles), mapped onto the clock."""

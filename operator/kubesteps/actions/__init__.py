"""Built-in actions and the parameters each one takes."""

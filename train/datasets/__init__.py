"""Training datasets: synthetic (on the fly); RHD, STB and FreiHAND readers."""

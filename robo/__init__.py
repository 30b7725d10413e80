"""robo: robot learning on MuJoCo and real hardware."""

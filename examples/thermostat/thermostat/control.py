"""Heater control with a dead band, so the relay does not chatter around the set point."""


class Hysteresis:
    """On below ``setpoint - band``, off above ``setpoint + band``, unchanged in between."""

    def __init__(self, setpoint, band=0.5):
        self.setpoint = setpoint
        self.band = band
        self.heating = False

    def update(self, temperature):
        """Take a reading (degrees C); return whether the heater should be on."""
        if temperature < self.setpoint - self.band:
            self.heating = True
        elif temperature > self.setpoint + self.band:
            self.heating = False
        return self.heating

# The hardware edge: lock outputs and door sensors (GPIO, MCP23017), the DS3231 RTC, the
# flash folder. Drivers import the core at most (never targets/ or radio/).

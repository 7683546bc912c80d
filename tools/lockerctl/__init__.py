"""Host tools for the offline parcel locker: client library and the `lockerctl` CLI.

The code algorithm, protocol codec and credential format are the firmware's own modules
(one implementation, imported from firmware/ by `lockerctl.fw`)."""

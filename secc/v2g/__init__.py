"""Protocol-neutral pieces of the V2G session layer: failures and their response codes,
timers, EVSE inputs and actions, DC charging rules, the table-driven session core.

The protocol packages (secc/din, secc/iso2, secc/iso20) build on these."""

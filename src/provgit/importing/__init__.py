"""`provgit import`: the Reconcile wizard as code.

The projection in `provgit.projection` run backwards. One module per job:

- `reverse`: element records -> what each element says about each resource;
- `pairing`: those views -> one group per resource (users by DN, then login/email);
- `analysis`: groups + existing YAML -> Automatic / For Review / Unresolved items
  and the resources to write, under the rules in force;
- `writer`: round-trip YAML edits and new files by the layout convention;
- `report`: the analysis as JSON values and markdown;
- `drift`: the same, written to a new git branch instead of the working tree.
"""

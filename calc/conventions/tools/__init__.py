"""The tool presets, one module per tool: its presets' rules (every layer type by name), the
facts it derives from a layer's arguments and shapes, and how ``calc verify`` runs it
(see :class:`calc.conventions.Runner`)."""

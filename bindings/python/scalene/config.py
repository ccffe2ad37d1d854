"""Options from a YAML file: ``scalene run -c scalene.yaml …``.

The file is one mapping whose keys are the long options of ``run``
(``cpu-only`` or ``cpu_only`` alike) and whose values have the option's
type.  libscaleneprof reads and checks it (scalene._core.load_config, the C
API of include/scalene/config.h); this module derives the keys and their
types from the run parser and applies the values the way the command line
would, through each option's own argparse type, so that a value the command
line refuses is refused here too.  The command line wins over the file.
See docs/config.md.

    parser = run_parser()
    options = parser.parse_args(argv, namespace=unset_namespace(parser))
    if options.config not in (UNSET, None):
        apply(parser, options, options.config)     # ConfigError
    fill_defaults(parser, options)
"""

import argparse

# Options that are no keys: help, the config file itself, the module to run.
_NOT_KEYS = {"help", "help-advanced", "config", "version"}
# Options whose value is a comma-separated list: a YAML list is joined.
_LISTS = {"profile-only", "profile-exclude"}
# Scalene's other spelling of a key: alias -> key.
_ALIASES = {"output": "outfile"}


class _Unset:
    """The value of every option the command line did not give."""

    __slots__ = ()

    def __repr__(self):
        return "UNSET"

    def __bool__(self):
        return False


UNSET = _Unset()


class ConfigError(Exception):
    """A config file that cannot be used; str(e) is one line,
    "file:line:column: text" (or "file: text" when no position applies)."""


class _Key:
    __slots__ = ("name", "kind", "action", "group")

    def __init__(self, name, kind, action, group):
        self.name, self.kind, self.action, self.group = name, kind, action, group


def unset_namespace(parser):
    """A namespace in which every option's dest is UNSET.  argparse fills a
    default only for attributes a namespace lacks, so parsing into this one
    sets exactly what the command line gave."""
    ns = argparse.Namespace()
    for action in parser._actions:
        if action.dest is not argparse.SUPPRESS:
            setattr(ns, action.dest, UNSET)
    for dest in parser._defaults:
        setattr(ns, dest, UNSET)
    return ns


def _kind_of_type(type_func):
    """"int", "float" or "string" for an argparse type: int and float as
    themselves; a validator by what it returns for a plain number."""
    if type_func is None or type_func is str:
        return "string"
    if type_func is int:
        return "int"
    if type_func is float:
        return "float"
    for probe in ("1", "0.5", "100", "4096", "1048576"):
        try:
            value = type_func(probe)
        except Exception:  # a validator refusing this probe: try the next
            continue
        if isinstance(value, bool):
            return "string"
        if isinstance(value, int):
            return "int"
        if isinstance(value, float):
            return "float"
        return "string"
    return "string"


def _keys(parser):
    """The YAML keys of parser, in its order: one per long option."""
    groups = {}
    for group in parser._mutually_exclusive_groups:
        for action in group._group_actions:
            groups[action] = group
    keys = []
    for action in parser._actions:
        if action.dest is argparse.SUPPRESS:
            continue
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        for opt in action.option_strings:
            if not opt.startswith("--"):
                continue
            name = opt[2:]
            if name in _NOT_KEYS:
                continue
            if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
                kind = "bool"
            elif action.nargs == 0:
                continue  # an action of its own kind: not a key
            elif name in _LISTS or action.nargs in ("*", "+"):
                kind = "list"
            else:
                kind = _kind_of_type(action.type)
            keys.append(_Key(name, kind, action, groups.get(action)))
    by_name = {k.name: k for k in keys}
    for alias, name in _ALIASES.items():
        if name in by_name and alias not in by_name:
            k = by_name[name]
            keys.append(_Key(alias, k.kind, k.action, k.group))
    return keys


def schema(parser):
    """The keys of a config file for parser: [(name, type)], type one of
    "bool", "int", "float", "string", "list"."""
    return [(k.name, k.kind) for k in _keys(parser)]


def _text(value):
    """A number as the command line would spell it (-1, not -1.0)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _convert(parser, key, value):
    """The value the command line would give key's dest; argparse.ArgumentError
    when the option's own type refuses it."""
    action = key.action
    if key.kind == "bool":
        return action.const if value else (not action.const)
    if key.kind == "list" and action.nargs in ("*", "+"):
        result = [parser._get_value(action, item) for item in value]
        for item in result:
            parser._check_value(action, item)
        return result
    text = ",".join(value) if key.kind == "list" else _text(value)
    result = parser._get_value(action, text)
    if action.choices is not None:
        parser._check_value(action, result)
    return result


def apply(parser, options, path):
    """Reads the config file at path and sets each option the command line
    left UNSET in options.  Raises ConfigError (one line, with the file, line
    and column) for a file that cannot be read or used."""
    from scalene import profiler

    keys = _keys(parser)
    try:
        core = profiler.load_core()
    except profiler.CoreUnavailable as e:
        raise ConfigError("%s: cannot read the config file: %s" % (path, e)) from None
    try:
        values = core.load_config(path, [(k.name, k.kind) for k in keys])
    except core.Error as e:
        raise ConfigError(" ".join(str(e).split())) from None

    by_name = {k.name: k for k in keys}
    by_action = {}  # action -> (name, line) of the first key that set it
    by_group = {}   # exclusive group -> (name, line, dest, value, bool) of its first key
    settings = []
    for name, value, line, column in values:
        key = by_name[name]
        where = "%s:%d:%d" % (path, line, column)
        try:
            result = _convert(parser, key, value)
        except argparse.ArgumentError as e:
            raise ConfigError('%s: "%s": %s' % (where, name, e.message)) from None
        first = by_action.get(key.action)
        if first is not None:
            raise ConfigError('%s: "%s" is the same option as "%s" (line %d)'
                              % (where, name, first[0], first[1]))
        by_action[key.action] = (name, line)
        if key.group is not None:
            other = by_group.get(key.group)
            if other is not None:
                o_name, o_line, o_dest, o_result, o_true = other
                if (o_true and key.kind == "bool" and value) or \
                        (o_dest == key.action.dest and o_result != result):
                    raise ConfigError('%s: "%s" is not allowed with "%s" (line %d)'
                                      % (where, name, o_name, o_line))
            else:
                by_group[key.group] = (name, line, key.action.dest, result,
                                       key.kind == "bool" and bool(value))
        settings.append((key.action.dest, result))

    unset = {dest for dest, _ in settings if getattr(options, dest, UNSET) is UNSET}
    for dest, result in settings:
        if dest in unset:
            setattr(options, dest, result)
    return options


def fill_defaults(parser, options):
    """Replaces what is still UNSET with the parser's defaults, as argparse
    would have: each action's default (a string default through the
    action's type), then the parser's set_defaults.  Returns options."""
    for action in parser._actions:
        dest = action.dest
        if dest is argparse.SUPPRESS or getattr(options, dest, None) is not UNSET:
            continue
        if action.default is argparse.SUPPRESS:
            continue
        default = action.default
        if isinstance(default, str) and action.type is not None:
            default = parser._get_value(action, default)
        setattr(options, dest, default)
    for dest, default in parser._defaults.items():
        if getattr(options, dest, None) is UNSET:
            setattr(options, dest, default)
    for dest, value in list(vars(options).items()):
        if value is UNSET:  # an option whose default is SUPPRESS
            delattr(options, dest)
    return options

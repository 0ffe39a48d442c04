package main

import (
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
)

// The shell completions are generated from the command definitions, as a
// static script: completing a word does not run quictun. urfave/cli's own
// completion runs the binary at every TAB with --generate-bash-completion
// and offers command names where a file belongs (--cert, --key, --ca);
// this one offers files for flags marked TakesFile, nothing for other
// flag values, and subcommands and flags by position.

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a bash or zsh completion script for quictun",
		ArgsUsage: "bash|zsh",
		Description: `Prints a completion script generated from quictun's commands and flags:
subcommands, flags (with their descriptions in zsh), and file names for
the flags that take a file (--cert, --key, --ca, --dir, …). make install
installs both scripts where bash-completion and zsh look for them.`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError{fmt.Errorf("completion needs one argument, bash or zsh, e.g. quictun completion bash")}
			}
			tree := completionTree(c.App)
			switch c.Args().First() {
			case "bash":
				writeBashCompletion(c.App.Writer, c.App.Name, tree)
			case "zsh":
				writeZshCompletion(c.App.Writer, c.App.Name, tree)
			default:
				return usageError{fmt.Errorf("completion %q: want bash or zsh", c.Args().First())}
			}
			return nil
		},
	}
}

// compFlag is a flag as the completion scripts see it.
type compFlag struct {
	names []string // with dashes: "--cert", "-h"
	desc  string
	value bool // takes a value (the next word, or after "=")
	file  bool // the value is a file name
}

// compNode is one command path ("" for quictun itself, "cert issue").
type compNode struct {
	path  string
	subs  []compSub
	flags []compFlag
	args  []string // the words an argument may be, from an ArgsUsage "a|b"
}

type compSub struct{ name, desc string }

// completionTree walks the app's visible commands and flags.
func completionTree(app *cli.App) []compNode {
	root := compNode{flags: compFlags(app.VisibleFlags())}
	if !app.HideHelp {
		root.flags = compAppendHelp(root.flags)
	}
	if !app.HideVersion && app.Version != "" && !compHasFlag(root.flags, "--version") {
		root.flags = append(root.flags, compFlag{names: []string{"--version", "-v"}, desc: "print the version"})
	}
	nodes := []compNode{root}
	// By index: appending to nodes moves them.
	var walk func(parent int, cmds []*cli.Command)
	walk = func(parent int, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Hidden || c.Name == "help" {
				continue
			}
			for _, n := range c.Names() {
				nodes[parent].subs = append(nodes[parent].subs, compSub{n, c.Usage})
			}
			node := compNode{path: strings.TrimSpace(nodes[parent].path + " " + c.Name), flags: compFlags(c.VisibleFlags())}
			if argWords.MatchString(c.ArgsUsage) {
				node.args = strings.Split(c.ArgsUsage, "|")
			}
			if !c.HideHelp {
				node.flags = compAppendHelp(node.flags)
			}
			nodes = append(nodes, node)
			walk(len(nodes)-1, c.Subcommands)
		}
	}
	walk(0, app.Commands)
	return nodes
}

// argWords matches an ArgsUsage that lists the words an argument may be,
// as completion's "bash|zsh".
var argWords = regexp.MustCompile(`^[a-z][a-z0-9-]*(\|[a-z][a-z0-9-]*)+$`)

func compAppendHelp(flags []compFlag) []compFlag {
	if compHasFlag(flags, "--help") {
		return flags
	}
	return append(flags, compFlag{names: []string{"--help", "-h"}, desc: "show help"})
}

func compHasFlag(flags []compFlag, name string) bool {
	for _, f := range flags {
		for _, n := range f.names {
			if n == name {
				return true
			}
		}
	}
	return false
}

func compFlags(flags []cli.Flag) []compFlag {
	var out []compFlag
	for _, f := range flags {
		cf := compFlag{file: compTakesFile(f)}
		for _, n := range f.Names() {
			if len(n) == 1 {
				cf.names = append(cf.names, "-"+n)
			} else {
				cf.names = append(cf.names, "--"+n)
			}
		}
		if d, ok := f.(cli.DocGenerationFlag); ok {
			cf.value = d.TakesValue()
			cf.desc = shortUsage(d.GetUsage())
		}
		out = append(out, cf)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].names[0] < out[j].names[0] })
	return out
}

// compTakesFile reports a flag's TakesFile field, which urfave/cli has on its
// string and path flags; read by reflection so that flags wrapping those
// (altsrc embeds them) count too.
func compTakesFile(f cli.Flag) bool {
	v := reflect.Indirect(reflect.ValueOf(f))
	if v.Kind() != reflect.Struct {
		return false
	}
	tf := v.FieldByName("TakesFile")
	return tf.IsValid() && tf.Kind() == reflect.Bool && tf.Bool()
}

// shortUsage is the first clause of a flag's usage (up to "; " or the end
// of a sentence), without urfave/cli's `PLACEHOLDER` quotes, and at most
// about 70 characters: a description for a completion menu.
func shortUsage(u string) string {
	u = strings.ReplaceAll(u, "`", "")
	if i := strings.Index(u, "; "); i > 0 {
		u = u[:i]
	}
	for from := 0; ; {
		i := strings.Index(u[from:], ". ")
		if i < 0 {
			break
		}
		i += from
		if strings.HasSuffix(u[:i], "e.g") || strings.HasSuffix(u[:i], "i.e") {
			from = i + 2
			continue
		}
		u = u[:i]
		break
	}
	const max = 70
	if len(u) > max {
		cut := strings.LastIndex(u[:max], " ")
		if cut < max/2 {
			cut = max
		}
		u = strings.TrimRight(u[:cut], " ,(") + "…"
	}
	return strings.TrimSpace(u)
}

// compFlagNames returns every name of the flags for which keep is true.
func compFlagNames(flags []compFlag, keep func(compFlag) bool) []string {
	var out []string
	for _, f := range flags {
		if keep(f) {
			out = append(out, f.names...)
		}
	}
	return out
}

func compSubNames(subs []compSub) []string {
	var out []string
	for _, s := range subs {
		out = append(out, s.name)
	}
	return out
}

func compAll(compFlag) bool          { return true }
func compTakesValue(f compFlag) bool { return f.value }
func compIsFile(f compFlag) bool     { return f.file }

// compQuote quotes s for sh and zsh in single quotes.
func compQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// writeCase writes the case arm of a lookup function: the path, then the
// words it returns.
func writeCase(w io.Writer, path string, words []string) {
	if len(words) == 0 {
		return
	}
	fmt.Fprintf(w, "\t%s) echo %s ;;\n", compQuote(path), compQuote(strings.Join(words, " ")))
}

// writeLookups writes the shell functions both scripts share: for a command
// path ($1), its subcommands, its flags, the flags of those that take a
// value, those that take a file, and the words its argument may be; and
// the walk that finds the path.
func writeLookups(w io.Writer, fn string, tree []compNode) {
	lookups := []struct {
		suffix string
		words  func(compNode) []string
	}{
		{"subs", func(n compNode) []string { return compSubNames(n.subs) }},
		{"flags", func(n compNode) []string { return compFlagNames(n.flags, compAll) }},
		{"valued", func(n compNode) []string { return compFlagNames(n.flags, compTakesValue) }},
		{"files", func(n compNode) []string { return compFlagNames(n.flags, compIsFile) }},
		{"args", func(n compNode) []string { return n.args }},
	}
	for _, l := range lookups {
		fmt.Fprintf(w, "%s_%s() {\n\tcase $1 in\n", fn, l.suffix)
		for _, n := range tree {
			writeCase(w, n.path, l.words(n))
		}
		fmt.Fprintf(w, "\tesac\n}\n\n")
	}
	// The walk: every word before the one being completed. A flag that
	// takes a value skips it (also as "--flag" "=" "value", as bash splits
	// --flag=value); "--flag=value" is one word; a subcommand extends the
	// path; anything else is an argument.
	fmt.Fprintf(w, `# %[1]s_path WORD...: the command path the words name, e.g. "cert issue".
%[1]s_path() {
	local p= w skip=0
	for w in "$@"; do
		if [ "$skip" = 1 ]; then
			skip=0
			[ "$w" = "=" ] && skip=1
			continue
		fi
		case $w in
		--*=* | = | -) ;;
		-*) case " $(%[1]s_valued "$p") " in *" $w "*) skip=1 ;; esac ;;
		*) case " $(%[1]s_subs "$p") " in *" $w "*) p=${p:+$p }$w ;; esac ;;
		esac
	done
	echo "$p"
}

# %[1]s_has LIST WORD: whether WORD is one of the words in LIST.
%[1]s_has() {
	case " $1 " in *" $2 "*) return 0 ;; esac
	return 1
}

`, fn)
}

// writeBashCompletion writes a bash completion script for the command name.
func writeBashCompletion(w io.Writer, name string, tree []compNode) {
	fn := "_" + strings.ReplaceAll(name, "-", "_")
	fmt.Fprintf(w, "# bash completion for %[1]s, generated by `%[1]s completion bash` from its\n"+
		"# command definitions; generate it again after an upgrade.\n\n", name)
	writeLookups(w, fn, tree)
	fmt.Fprintf(w, `%[1]s() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev= flag= p
	p=$(%[1]s_path "${COMP_WORDS[@]:1:COMP_CWORD-1}")
	COMPREPLY=()
	if [ "$cur" = "=" ]; then
		flag=${COMP_WORDS[COMP_CWORD-1]} cur=
	elif [ "$COMP_CWORD" -ge 2 ] && [ "${COMP_WORDS[COMP_CWORD-1]}" = "=" ]; then
		flag=${COMP_WORDS[COMP_CWORD-2]}
	elif [[ $cur == --*=* ]]; then
		flag=${cur%%%%=*} cur=${cur#*=}
	elif [ "$COMP_CWORD" -ge 2 ]; then
		prev=${COMP_WORDS[COMP_CWORD-1]}
		%[1]s_has "$(%[1]s_valued "$p")" "$prev" && flag=$prev
	fi
	if [ -n "$flag" ]; then
		if %[1]s_has "$(%[1]s_files "$p")" "$flag"; then
			compopt -o filenames 2>/dev/null
			mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		else
			compopt +o default 2>/dev/null # a value, not a file name
		fi
		return 0
	fi
	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W "$(%[1]s_flags "$p")" -- "$cur")
		return 0
	fi
	local words
	words="$(%[1]s_subs "$p") $(%[1]s_args "$p")"
	if [ -n "${words// /}" ]; then
		compopt +o default 2>/dev/null
		mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
	fi
	# Otherwise an argument such as a file: -o default completes file names.
	return 0
}

complete -o default -F %[1]s %[2]s
`, fn, name)
}

// writeZshCompletion writes a zsh completion script (an autoloaded
// function file named _<name> in $fpath, or sourced after compinit).
func writeZshCompletion(w io.Writer, name string, tree []compNode) {
	fn := "_" + strings.ReplaceAll(name, "-", "_")
	fmt.Fprintf(w, "#compdef %[1]s\n# zsh completion for %[1]s, generated by `%[1]s completion zsh` from its\n"+
		"# command definitions; generate it again after an upgrade.\n\n", name)
	writeLookups(w, fn, tree)
	// Descriptions for _describe: "name:description", a colon in the
	// name escaped.
	fmt.Fprintf(w, "# %s_described KIND PATH: sets reply to NAME:DESCRIPTION of the subcommands or flags.\n", fn)
	fmt.Fprintf(w, "%s_described() {\n\treply=()\n\tcase $1:$2 in\n", fn)
	for _, n := range tree {
		if len(n.subs) > 0 {
			var items []string
			for _, s := range n.subs {
				items = append(items, compQuote(strings.ReplaceAll(s.name, ":", `\:`)+":"+s.desc))
			}
			fmt.Fprintf(w, "\t%s) reply=(%s) ;;\n", compQuote("subs:"+n.path), strings.Join(items, " "))
		}
		var items []string
		for _, f := range n.flags {
			for _, fl := range f.names {
				items = append(items, compQuote(fl+":"+f.desc))
			}
		}
		if len(items) > 0 {
			fmt.Fprintf(w, "\t%s) reply=(%s) ;;\n", compQuote("flags:"+n.path), strings.Join(items, " "))
		}
	}
	fmt.Fprintf(w, "\tesac\n}\n\n")
	fmt.Fprintf(w, `%[1]s() {
	local cur=$words[CURRENT] flag= p
	local -a reply
	p=$(%[1]s_path "${(@)words[2,CURRENT-1]}")
	if [[ $cur == --*=* ]]; then
		flag=${cur%%%%=*}
		compset -P '*='
	elif (( CURRENT > 2 )) && %[1]s_has "$(%[1]s_valued "$p")" "$words[CURRENT-1]"; then
		flag=$words[CURRENT-1]
	fi
	if [[ -n $flag ]]; then
		if %[1]s_has "$(%[1]s_files "$p")" "$flag"; then
			_files
		else
			_message "value of $flag"
		fi
		return
	fi
	if [[ $cur == -* ]]; then
		%[1]s_described flags "$p"
		_describe -t flags flag reply
		return
	fi
	%[1]s_described subs "$p"
	if (( $#reply )); then
		_describe -t commands command reply
	elif [[ -n $(%[1]s_args "$p") ]]; then
		compadd -- ${=$(%[1]s_args "$p")}
	else
		_files
	fi
}

# Autoloaded from $fpath, this file is the body of %[1]s: it defines the
# functions, then completes. Sourced, it registers the function.
if [ "$funcstack[1]" = %[1]s ]; then
	%[1]s "$@"
else
	compdef %[1]s %[2]s
fi
`, fn, name)
}

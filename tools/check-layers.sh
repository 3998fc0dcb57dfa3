#!/usr/bin/env bash
# check-layers.sh [--report] [--root DIR]: checks Keel's include layering.
#
# Builds the file-level graph of every `#include "..."` (and nasm `%include`) in the
# sources under boot/ arch/ drivers/ vmm/ and reports
#   - include cycles: every strongly connected component of more than one file, and
#     every file that includes itself, with all the files in it;
#   - upward includes: a file including one of a layer that is not below its own, per
#     the layer table tools/layers.txt (the one place the layers are defined);
#   - totals: files, edges, cycles, edges and upward includes per pair of layers;
#   - unit cycles (a .c and its .h as one unit), as information: a header never
#     includes a .c, so modules calling each other show only there.
# Exit status: 0 clean, 1 on a cycle, an upward include or an include it cannot resolve,
# 2 on bad usage, a bad table or a file no layer claims. --report prints the same and
# exits 0 on findings, for today's tree, which the layout move of issue 7 has not
# reshaped yet. --root checks another tree (the self-test builds fake ones).
# Only bash, coreutils, grep and awk (POSIX; Debian's default is mawk): CI machines
# get nothing else for it.
set -euo pipefail

usage() { echo "usage: $0 [--report] [--root DIR]"; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
report_only=0
while [ $# -gt 0 ]; do
    case $1 in
        --report) report_only=1 ;;
        --root)   [ $# -ge 2 ] || { usage >&2; exit 2; }; ROOT=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "check-layers: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
[ -d "$ROOT" ] || { echo "check-layers: no such directory: $ROOT" >&2; exit 2; }
cd "$ROOT"
TABLE=tools/layers.txt
[ -f "$TABLE" ] || { echo "check-layers: no layer table $ROOT/$TABLE" >&2; exit 2; }

# tests/ and tools/ are not layered: tests reach into every layer on purpose.
dirs=()
for d in boot arch drivers vmm; do [ -d "$d" ] && dirs+=("$d"); done
[ ${#dirs[@]} -gt 0 ] || { echo "check-layers: none of boot/ arch/ drivers/ vmm/ in $ROOT" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
find "${dirs[@]}" -type f \( -name '*.[ch]' -o -name '*.asm' -o -name '*.inc' \) |
    LC_ALL=C sort > "$tmp/files"

# One "path:line:text" per include directive. Angle-bracket includes are the compiler's
# and gnu-efi's headers, outside Keel's layers.
mapfile -t c_files < <(grep -E '\.[ch]$' "$tmp/files" || true)
mapfile -t asm_files < <(grep -E '\.(asm|inc)$' "$tmp/files" || true)
# grep: 1 is "no include in these files", 2 an unreadable file.
grep_includes() {
    local regex=$1; shift
    [ $# -gt 0 ] || return 0
    grep -nHE "$regex" -- "$@" || [ $? -eq 1 ]
}
{
    grep_includes '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "${c_files[@]}"
    grep_includes "^[[:space:]]*%include[[:space:]]*[\"']" "${asm_files[@]}"
} > "$tmp/includes"

status=0
LC_ALL=C awk -v table="$TABLE" -v filelist="$tmp/files" -v inclist="$tmp/includes" \
    -v report_only="$report_only" '
function die(msg) { print "check-layers: " msg > "/dev/stderr"; failed_hard = 1; exit 2 }

# --- the layer table -------------------------------------------------------------
FILENAME == table {
    sub(/#.*/, "")
    if (NF == 0) next
    where = table ":" FNR
    if ($1 == "layer") {
        if (NF < 2 || (NF > 2 && ($3 != "on" || NF < 4))) die(where ": expected \"layer NAME [on LOWER...]\"")
        if ($2 in is_layer) die(where ": layer " $2 " declared twice")
        is_layer[$2] = 1; layer_name[++nlayers] = $2
        for (i = 4; i <= NF; i++) { on[$2, ++non[$2]] = $i; on_where[$2, non[$2]] = where }
    } else if ($1 == "path") {
        if (NF != 3) die(where ": expected \"path PATH LAYER\"")
        if ($2 in path_layer) die(where ": path " $2 " listed twice")
        path_layer[$2] = $3; path_where[$2] = where; table_path[++npaths] = $2
    } else if ($1 == "generated") {
        if (NF != 3) die(where ": expected \"generated NAME SOURCE\"")
        if ($2 in generated_from) die(where ": generated " $2 " listed twice")
        generated_from[$2] = $3; generated_where[$2] = where
    } else die(where ": expected a \"layer\", \"path\" or \"generated\" line, not \"" $1 "\"")
    next
}

# --- the sources ---------------------------------------------------------------
FILENAME == filelist { file[++nfiles] = $0; is_file[$0] = 1; next }

FILENAME == inclist {
    # grep -nH: "path:line:text"; Keel paths have no colons.
    p = index($0, ":"); src = substr($0, 1, p - 1); rest = substr($0, p + 1)
    p = index(rest, ":"); line = substr(rest, 1, p - 1); text = substr(rest, p + 1)
    sub(/^[ \t]*[#%][ \t]*include[ \t]*/, "", text)
    q = substr(text, 1, 1)                   # nasm takes either quote
    text = substr(text, 2); p = index(text, q)
    if (p == 0) { bad_syntax[++nbad_syntax] = src ":" line; next }
    ninc++; inc_src[ninc] = src; inc_line[ninc] = line; inc_name[ninc] = substr(text, 1, p - 1)
    next
}

# Collapses "." and ".." so "../cpu.h" from arch/x86/vmx names arch/x86/cpu.h; a path
# that climbs out of the tree keeps its ".." and resolves to nothing.
function normalise(path,    n, part, out, depth, i) {
    n = split(path, part, "/"); depth = 0
    for (i = 1; i <= n; i++) {
        if (part[i] == "" || part[i] == ".") continue
        if (part[i] == ".." && depth > 0 && out[depth] != "..") { depth--; continue }
        out[++depth] = part[i]
    }
    path = out[1]
    for (i = 2; i <= depth; i++) path = path "/" out[i]
    return path
}
function dirname(path) { sub(/\/[^\/]*$/, "", path); return path }

# The compiler looks beside the including file first, then in -I. (the tree root). A file
# the build generates is not in the tree: its include stands for the source it comes from.
function resolve(src, name,    c) {
    c = normalise(dirname(src) "/" name); if (c in is_file) return c
    c = normalise(name); if (c in is_file) return c
    if (name in generated_from && generated_from[name] in is_file) return generated_from[name]
    return ""
}

function layer_of(f,    i, p, best) {
    best = ""
    for (i = 1; i <= npaths; i++) {
        p = table_path[i]
        if (f == p || (substr(p, length(p)) == "/" && substr(f, 1, length(p)) == p))
            if (length(p) > length(best)) best = p
    }
    return best == "" ? "" : path_layer[best]
}

# below[a, b]: a sits on b, directly or through the layers b is on.
function sit_on(top, l,    i, b) {
    for (i = 1; i <= non[l]; i++) {
        b = on[l, i]
        if ((top, b) in below) continue
        below[top, b] = 1
        sit_on(top, b)
    }
}

# Tarjan over graph g ("file" or "unit"): every strongly connected component.
function connect(g, v,    i, w, c, n) {
    index_of[g, v] = low[g, v] = ++visit[g]
    stack[g, ++sp[g]] = v; on_stack[g, v] = 1
    for (i = 1; i <= nout[g, v]; i++) {
        w = out[g, v, i]
        if (!((g, w) in index_of)) {
            connect(g, w)
            if (low[g, w] < low[g, v]) low[g, v] = low[g, w]
        } else if (on_stack[g, w] && index_of[g, w] < low[g, v]) low[g, v] = index_of[g, w]
    }
    if (low[g, v] != index_of[g, v]) return
    c = ++ncomp[g]; n = 0
    do { w = stack[g, sp[g]--]; on_stack[g, w] = 0; comp[g, c, ++n] = w; comp_of[g, w] = c } while (w != v)
    comp_size[g, c] = n
}

function add_edge(g, s, d) {
    if ((g, s, d) in has_edge) return 0
    has_edge[g, s, d] = 1; out[g, s, ++nout[g, s]] = d
    return 1
}

# Cycles of graph g, largest first (that is the one to break): cycle[g, k], ncycles[g].
function find_cycles(g,    i, c, v, k, t, j) {
    for (i = 1; i <= nnodes[g]; i++) if (!((g, node[g, i]) in index_of)) connect(g, node[g, i])
    ncycles[g] = 0; largest[g] = 0
    for (c = 1; c <= ncomp[g]; c++) {
        v = comp[g, c, 1]
        if (comp_size[g, c] == 1 && !((g, v, v) in has_edge)) continue
        cycle[g, ++ncycles[g]] = c
        if (comp_size[g, c] > largest[g]) largest[g] = comp_size[g, c]
    }
    for (i = 2; i <= ncycles[g]; i++) {
        t = cycle[g, i]
        for (j = i - 1; j >= 1 && comp_size[g, cycle[g, j]] < comp_size[g, t]; j--) cycle[g, j + 1] = cycle[g, j]
        cycle[g, j + 1] = t
    }
}

function sort_strings(a, n,    i, j, t) {
    for (i = 2; i <= n; i++) {
        t = a[i]
        for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]
        a[j + 1] = t
    }
}

# A unit is a .c and the .h of the same name: what a module "uses" is what either includes.
function unit_of(f) { sub(/\.[ch]$/, "", f); return f }
function unit_label(u) {
    if ((u ".c") in is_file && (u ".h") in is_file) return u ".[ch]"
    return (u ".c") in is_file ? u ".c" : (u ".h") in is_file ? u ".h" : u
}

# Prints the cycles of graph g with their members and the file-level include edges between
# members, which are where a cycle can be cut.
function print_cycles(g, what,    k, c, n, i, member, inner, ne, s, d) {
    for (k = 1; k <= ncycles[g]; k++) {
        c = cycle[g, k]; n = comp_size[g, c]
        for (i = 1; i <= n; i++) member[i] = comp[g, c, i]
        sort_strings(member, n)
        printf "  cycle %d, %d %s%s:\n", k, n, what, n == 1 ? " (includes itself)" : "s"
        for (i = 1; i <= n; i++)
            printf "    %-30s %s\n", g == "unit" ? unit_label(member[i]) : member[i], unit_layer[g, member[i]]
        ne = 0
        for (i = 1; i <= nedges; i++) {
            s = g == "unit" ? unit_of(edge_src[i]) : edge_src[i]
            d = g == "unit" ? unit_of(edge_dst[i]) : edge_dst[i]
            if (comp_of[g, s] != c || comp_of[g, d] != c || (g == "unit" && s == d)) continue
            inner[++ne] = sprintf("%s:%s -> %s", edge_src[i], edge_line[i], edge_dst[i])
        }
        printf "    %d include%s inside it:\n", ne, ne == 1 ? "" : "s"
        for (i = 1; i <= ne; i++) print "      " inner[i]
    }
}

END {
    if (failed_hard) exit 2
    if (nlayers == 0) die(table ": declares no layer")
    for (i = 1; i <= nlayers; i++) {
        l = layer_name[i]
        for (j = 1; j <= non[l]; j++)
            if (!(on[l, j] in is_layer)) die(on_where[l, j] ": layer " l " is on " on[l, j] ", which is not declared")
    }
    for (i = 1; i <= npaths; i++)
        if (!(path_layer[table_path[i]] in is_layer))
            die(path_where[table_path[i]] ": path " table_path[i] " is in layer " path_layer[table_path[i]] ", which is not declared")
    for (i = 1; i <= nlayers; i++) {
        sit_on(layer_name[i], layer_name[i])
        if ((layer_name[i], layer_name[i]) in below) die(table ": layer " layer_name[i] " sits on itself through its \"on\" layers")
    }

    for (i = 1; i <= nfiles; i++) {
        f = file[i]; l = layer_of(f)
        if (l == "") die("no path in " table " claims " f)
        layer[f] = l; layer_files[l]++
        node["file", ++nnodes["file"]] = f; unit_layer["file", f] = l
        u = unit_of(f)
        if (!(("unit", u) in unit_layer)) { node["unit", ++nnodes["unit"]] = u; unit_layer["unit", u] = l }
        else if (unit_layer["unit", u] != l) unit_layer["unit", u] = unit_layer["unit", u] "+" l
    }
    # A file line that matches nothing is stale (the file moved) and would silently stop
    # meaning anything. A folder may not exist yet (vmm/lib/ before the layout move).
    for (i = 1; i <= npaths; i++) {
        p = table_path[i]; used = 0
        if (substr(p, length(p)) == "/") continue
        for (j = 1; j <= nfiles && !used; j++)
            if (file[j] == p || (substr(p, length(p)) == "/" && substr(file[j], 1, length(p)) == p)) used = 1
        if (!used) print "check-layers: warning: " path_where[p] ": path " p " matches no file" > "/dev/stderr"
    }
    for (g in generated_from)
        if (!(generated_from[g] in is_file))
            print "check-layers: warning: " generated_where[g] ": " g " is generated from " generated_from[g] ", which does not exist" > "/dev/stderr"

    # --- the graph ---------------------------------------------------------------
    for (i = 1; i <= ninc; i++) {
        s = inc_src[i]; d = resolve(s, inc_name[i])
        if (d == "") { unresolved[++nunres] = s ":" inc_line[i] ": \"" inc_name[i] "\""; continue }
        if (!add_edge("file", s, d)) continue    # the same include twice is one edge
        nedges++; edge_src[nedges] = s; edge_dst[nedges] = d; edge_line[nedges] = inc_line[i]
        if (unit_of(s) != unit_of(d)) add_edge("unit", unit_of(s), unit_of(d))
        ls = layer[s]; ld = layer[d]
        pair_edges[ls, ld]++
        if (ls != ld && !((ls, ld) in below)) {
            nup++; pair_up[ls, ld]++
            up[nup] = sprintf("%s:%s -> %s", s, inc_line[i], d); up_pair[nup] = ls " -> " ld
        }
    }
    find_cycles("file")
    find_cycles("unit")

    # --- the report --------------------------------------------------------------
    print "Layers (" table "), lowest first; a layer may include itself and what it is on:"
    for (i = 1; i <= nlayers; i++) {
        l = layer_name[i]; lower = ""
        for (j = 1; j <= nlayers; j++) if ((l, layer_name[j]) in below) lower = lower " " layer_name[j]
        printf "  %-10s %4d files%s\n", l, layer_files[l], lower == "" ? "" : "   on" lower
    }
    printf "Files: %d   include edges: %d   unresolved includes: %d\n", nfiles, nedges, nunres

    printf "Include cycles: %d", ncycles["file"]
    if (ncycles["file"]) printf "   files in the largest: %d", largest["file"]
    printf "\n"
    print_cycles("file", "file")

    printf "Upward includes: %d\n", nup
    print "Include edges per pair of layers (from -> to: edges, upward):"
    for (i = 1; i <= nlayers; i++) for (j = 1; j <= nlayers; j++) {
        a = layer_name[i]; b = layer_name[j]
        if (!((a, b) in pair_edges)) continue
        printf "  %-10s -> %-10s %4d%s\n", a, b, pair_edges[a, b], \
            ((a, b) in pair_up) ? sprintf("   %d UPWARD", pair_up[a, b]) : ""
    }
    if (nup) {
        print "Upward include edges:"
        for (i = 1; i <= nup; i++) printf "  %-56s (%s)\n", up[i], up_pair[i]
    }
    if (nunres) {
        print "Unresolved includes (no such file under the checked folders):"
        for (i = 1; i <= nunres; i++) print "  " unresolved[i]
    }
    for (i = 1; i <= nbad_syntax; i++) print "check-layers: warning: " bad_syntax[i] ": include without a closing quote" > "/dev/stderr"

    # A header never includes a .c, so a module that calls another which calls it back
    # shows only here. Information, not a failure: within a layer such a pair is
    # ordinary C, and a unit cycle across layers always has an upward include in it.
    printf "Unit cycles (a .c and its .h as one unit; not a failure): %d", ncycles["unit"]
    if (ncycles["unit"]) printf "   units in the largest: %d", largest["unit"]
    printf "\n"
    print_cycles("unit", "unit")

    bad = ncycles["file"] + nup + nunres
    if (bad == 0) { print "check-layers: ok"; exit 0 }
    printf "check-layers: %s: %d include cycle%s, %d upward include%s, %d unresolved include%s\n", \
        report_only ? "report" : "FAIL", ncycles["file"], ncycles["file"] == 1 ? "" : "s", \
        nup, nup == 1 ? "" : "s", nunres, nunres == 1 ? "" : "s"
    exit report_only ? 0 : 1
}
' "$TABLE" "$tmp/files" "$tmp/includes" || status=$?
exit $status

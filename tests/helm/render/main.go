// render: a stand-in for `helm template`, for testing the lfsgate chart where helm itself
// cannot be installed. It renders every template of a chart with the engines helm uses
// (Go's text/template and sprig v3) plus helm's own template functions (include, tpl,
// required, toYaml, fromYaml, fromYamlArray, toJson, fromJson, fromJsonArray, lookup), and
// with helm's objects (.Values, .Release, .Chart, .Capabilities, .Template, .Files).
//
// What it copies from helm 3 (pkg/engine, pkg/chartutil):
//   - values are parsed the way helm parses them (YAML -> JSON -> interface{}, so numbers
//     are float64, as with sigs.k8s.io/yaml), values files are merged over values.yaml
//     (maps merged key by key, a null deletes a default), then --set values;
//   - missingkey=zero and "<no value>" replaced by "", templates parsed in a fixed order,
//     partials (files starting with "_") not rendered, include/tpl with a recursion limit;
//   - the functions helm removes from sprig (env, expandenv) are removed here too;
//   - lookup returns an empty map, as in `helm template` (no cluster);
//   - toYaml trims the final newline, fromYaml returns {"Error": ...} on a parse error.
//
// Output is what `helm template` prints: for each non-empty manifest "---\n# Source: <name>",
// then the rendered text; NOTES.txt is rendered (so its errors count) and written to the
// file named by --notes, if any. Templates other than *.yaml, *.yml, *.tpl and NOTES.txt
// are ignored, like helm.
//
// Usage: render --chart DIR [-f VALUES.yaml]... [--set a.b=v]... [--set-string a.b=v]...
//
//	[--name RELEASE] [--namespace NS] [--kube-version 1.29.0] [--api-versions G/V/Kind,...]
//	[--notes FILE] [--output-dir DIR]
//
// Build (offline, against Debian's packaged sources):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o render ./tests/helm/render
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"github.com/ghodss/yaml"
)

const recursionMaxNums = 1000

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// ---- .Capabilities ----

type apiVersions []string

// Has is helm's Capabilities.APIVersions.Has: "group/version" or "group/version/Kind".
func (a apiVersions) Has(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

type kubeVersion struct {
	Version, Major, Minor string
}

func (k kubeVersion) String() string     { return k.Version }
func (k kubeVersion) GitVersion() string { return k.Version }

type capabilities struct {
	KubeVersion kubeVersion
	APIVersions apiVersions
	HelmVersion map[string]interface{}
}

// ---- .Files ----

type files map[string][]byte

func (f files) Get(name string) string      { return string(f[name]) }
func (f files) GetBytes(name string) []byte { return f[name] }
func (f files) Lines(name string) []string {
	s := string(f[name])
	if s == "" {
		return []string{}
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}
func (f files) Glob(pattern string) files {
	out := files{}
	for name, data := range f {
		if ok, _ := path.Match(pattern, name); ok {
			out[name] = data
		}
	}
	return out
}
func (f files) AsConfig() string {
	m := map[string]string{}
	for k, v := range f {
		m[path.Base(k)] = string(v)
	}
	return toYAML(m)
}
func (f files) AsSecrets() string {
	m := map[string]string{}
	for k, v := range f {
		m[path.Base(k)] = b64(v)
	}
	return toYAML(m)
}

func b64(b []byte) string {
	s, _ := json.Marshal(b) // []byte marshals as standard base64 in a JSON string
	return strings.Trim(string(s), "\"")
}

// ---- helm's functions ----

func toYAML(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func fromYAML(str string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := yaml.Unmarshal([]byte(str), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromYAMLArray(str string) []interface{} {
	a := []interface{}{}
	if err := yaml.Unmarshal([]byte(str), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

func fromJSON(str string) map[string]interface{} {
	m := map[string]interface{}{}
	if err := json.Unmarshal([]byte(str), &m); err != nil {
		m["Error"] = err.Error()
	}
	return m
}

func fromJSONArray(str string) []interface{} {
	a := []interface{}{}
	if err := json.Unmarshal([]byte(str), &a); err != nil {
		a = []interface{}{err.Error()}
	}
	return a
}

func required(warn string, val interface{}) (interface{}, error) {
	if val == nil {
		return val, errors.New("execution error: " + warn)
	}
	if s, ok := val.(string); ok && s == "" {
		return val, errors.New("execution error: " + warn)
	}
	return val, nil
}

func funcMap() template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	extra := template.FuncMap{
		"toYaml":        toYAML,
		"fromYaml":      fromYAML,
		"fromYamlArray": fromYAMLArray,
		"toJson":        toJSON,
		"fromJson":      fromJSON,
		"fromJsonArray": fromJSONArray,
		"required":      required,
		"lookup": func(string, string, string, string) (map[string]interface{}, error) {
			return map[string]interface{}{}, nil
		},
		// replaced per render (they need the template set)
		"include": func(string, interface{}) string { return "not implemented" },
		"tpl":     func(string, interface{}) interface{} { return "not implemented" },
	}
	for k, v := range extra {
		f[k] = v
	}
	return f
}

func includeFun(t *template.Template, included map[string]int) func(string, interface{}) (string, error) {
	return func(name string, data interface{}) (string, error) {
		var buf strings.Builder
		if included[name] > recursionMaxNums {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
		}
		included[name]++
		err := t.ExecuteTemplate(&buf, name, data)
		included[name]--
		return buf.String(), err
	}
}

func tplFun(parent *template.Template, included map[string]int) func(string, interface{}) (string, error) {
	return func(text string, vals interface{}) (string, error) {
		t, err := parent.Clone()
		if err != nil {
			return "", fmt.Errorf("cannot clone template: %w", err)
		}
		t.Option("missingkey=zero")
		t.Funcs(template.FuncMap{"include": includeFun(t, included), "tpl": tplFun(t, included)})
		t, err = t.New(parent.Name()).Parse(text)
		if err != nil {
			return "", fmt.Errorf("cannot parse template %q: %w", text, err)
		}
		var buf strings.Builder
		if err := t.Execute(&buf, vals); err != nil {
			return "", fmt.Errorf("error during tpl function execution for %q: %w", text, err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
}

// ---- values ----

func readYAMLMap(file string) (map[string]interface{}, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	m := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return m, nil
}

// coalesce merges src over dst as helm merges a values file over the chart defaults: maps
// key by key, anything else replaced, a null in src deletes the key.
func coalesce(dst, src map[string]interface{}) map[string]interface{} {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		sm, sok := v.(map[string]interface{})
		dm, dok := dst[k].(map[string]interface{})
		if sok && dok {
			dst[k] = coalesce(dm, sm)
		} else {
			dst[k] = v
		}
	}
	return dst
}

// setValue applies one --set (value parsed as YAML, like a scalar in a values file) or
// --set-string. Only dotted paths of map keys; enough for tests.
func setValue(vals map[string]interface{}, expr string, asString bool) error {
	eq := strings.IndexByte(expr, '=')
	if eq <= 0 {
		return fmt.Errorf("--set %q: expected path=value", expr)
	}
	keys := strings.Split(expr[:eq], ".")
	raw := expr[eq+1:]
	var v interface{}
	if asString {
		v = raw
	} else if err := yaml.Unmarshal([]byte(raw), &v); err != nil {
		return fmt.Errorf("--set %q: %w", expr, err)
	}
	m := vals
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]interface{})
		if !ok {
			next = map[string]interface{}{}
			m[k] = next
		}
		m = next
	}
	last := keys[len(keys)-1]
	if v == nil {
		delete(m, last)
	} else {
		m[last] = v
	}
	return nil
}

// chartObject turns Chart.yaml's keys into helm's Chart fields (name -> Name ...).
func chartObject(meta map[string]interface{}) map[string]interface{} {
	out := map[string]interface{}{}
	for k, v := range meta {
		if k == "" {
			continue
		}
		out[strings.ToUpper(k[:1])+k[1:]] = v
	}
	for _, k := range []string{"Name", "Version", "AppVersion", "Description", "Type", "KubeVersion"} {
		if _, ok := out[k]; !ok {
			out[k] = ""
		}
	}
	if v, ok := out["AppVersion"].(float64); ok { // appVersion: 1.0 in YAML
		out["AppVersion"] = strconv.FormatFloat(v, 'f', -1, 64)
	}
	return out
}

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "render: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	var valueFiles, sets, setStrings multiFlag
	chartDir := flag.String("chart", "", "chart directory (with Chart.yaml)")
	name := flag.String("name", "release-name", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	kubeVer := flag.String("kube-version", "1.29.0", "Kubernetes version for .Capabilities")
	apiVers := flag.String("api-versions", "", "extra comma-separated .Capabilities.APIVersions")
	notes := flag.String("notes", "", "write the rendered NOTES.txt to this file")
	outDir := flag.String("output-dir", "", "write each manifest to DIR/<chart>/templates/... as well")
	flag.Var(&valueFiles, "f", "values file (repeatable, later ones win)")
	flag.Var(&sets, "set", "path=value (YAML scalar; repeatable)")
	flag.Var(&setStrings, "set-string", "path=value (string; repeatable)")
	flag.Parse()
	if *chartDir == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}

	meta, err := readYAMLMap(filepath.Join(*chartDir, "Chart.yaml"))
	if err != nil {
		die("%v", err)
	}
	chart := chartObject(meta)
	chartName, _ := chart["Name"].(string)
	if chartName == "" {
		die("Chart.yaml: name is required")
	}
	values := map[string]interface{}{}
	if _, err := os.Stat(filepath.Join(*chartDir, "values.yaml")); err == nil {
		if values, err = readYAMLMap(filepath.Join(*chartDir, "values.yaml")); err != nil {
			die("%v", err)
		}
	}
	for _, f := range valueFiles {
		m, err := readYAMLMap(f)
		if err != nil {
			die("%v", err)
		}
		values = coalesce(values, m)
	}
	for _, s := range sets {
		if err := setValue(values, s, false); err != nil {
			die("%v", err)
		}
	}
	for _, s := range setStrings {
		if err := setValue(values, s, true); err != nil {
			die("%v", err)
		}
	}

	// templates and .Files (every file of the chart outside templates/)
	tpls := map[string]string{}
	chartFiles := files{}
	root := filepath.Clean(*chartDir)
	err = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.HasPrefix(rel, "templates/") {
			ext := path.Ext(rel)
			if ext == ".yaml" || ext == ".yml" || ext == ".tpl" || path.Base(rel) == "NOTES.txt" {
				tpls[chartName+"/"+rel] = string(data)
			}
		} else if rel != "Chart.yaml" && rel != "values.yaml" && !strings.HasPrefix(rel, "charts/") {
			chartFiles[rel] = data
		}
		return nil
	})
	if err != nil {
		die("%v", err)
	}

	kv := strings.SplitN(strings.TrimPrefix(*kubeVer, "v"), ".", 3)
	if len(kv) < 2 {
		die("--kube-version: expected MAJOR.MINOR.PATCH")
	}
	apis := apiVersions{"v1", "apps/v1", "autoscaling/v2", "policy/v1", "networking.k8s.io/v1",
		"batch/v1", "rbac.authorization.k8s.io/v1"}
	if *apiVers != "" {
		apis = append(apis, strings.Split(*apiVers, ",")...)
	}
	caps := capabilities{
		KubeVersion: kubeVersion{Version: "v" + strings.TrimPrefix(*kubeVer, "v"), Major: kv[0], Minor: kv[1]},
		APIVersions: apis,
		HelmVersion: map[string]interface{}{"Version": "v3.14.0"},
	}
	top := map[string]interface{}{
		"Values": values,
		"Chart":  chart,
		"Release": map[string]interface{}{
			"Name": *name, "Namespace": *namespace, "Service": "Helm",
			"IsInstall": true, "IsUpgrade": false, "Revision": 1,
		},
		"Capabilities": caps,
		"Files":        chartFiles,
	}

	// parse everything into one set, as helm does, in a fixed order
	names := make([]string, 0, len(tpls))
	for n := range tpls {
		names = append(names, n)
	}
	sort.Strings(names)
	t := template.New("gotpl")
	t.Option("missingkey=zero")
	included := map[string]int{}
	t.Funcs(funcMap())
	t.Funcs(template.FuncMap{"include": includeFun(t, included), "tpl": tplFun(t, included)})
	for _, n := range names {
		if _, err := t.New(n).Parse(tpls[n]); err != nil {
			die("parse error in %s: %v", n, err)
		}
	}

	var out strings.Builder
	var notesText string
	failed := false
	for _, n := range names {
		if strings.HasPrefix(path.Base(n), "_") {
			continue
		}
		vals := map[string]interface{}{}
		for k, v := range top {
			vals[k] = v
		}
		vals["Template"] = map[string]interface{}{"Name": n, "BasePath": chartName + "/templates"}
		var buf strings.Builder
		if err := t.ExecuteTemplate(&buf, n, vals); err != nil {
			fmt.Fprintf(os.Stderr, "render: %s: %v\n", n, err)
			failed = true
			continue
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if path.Base(n) == "NOTES.txt" {
			notesText = text
			continue
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		fmt.Fprintf(&out, "---\n# Source: %s\n%s", n, text)
		if !strings.HasSuffix(text, "\n") {
			out.WriteString("\n")
		}
		if *outDir != "" {
			dst := filepath.Join(*outDir, filepath.FromSlash(n))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				die("%v", err)
			}
			if err := os.WriteFile(dst, []byte(text), 0o644); err != nil {
				die("%v", err)
			}
		}
	}
	if failed {
		os.Exit(1)
	}
	os.Stdout.WriteString(out.String())
	if *notes != "" {
		if err := os.WriteFile(*notes, []byte(notesText), 0o644); err != nil {
			die("%v", err)
		}
	}
}

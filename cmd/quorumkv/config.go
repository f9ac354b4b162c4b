package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// Node settings come from three places, the first that sets a flag wins:
// the command line, then the environment (QUORUMKV_ and the flag's name
// in capitals with _ for -, e.g. QUORUMKV_TOKEN_FILE), then --config, a
// YAML file mapping flag names to values ("token-file: /etc/qkv/tokens").

// errConfig marks a bad --config file or environment variable.
var errConfig = errors.New("configuration")

// envName is the environment variable of a flag.
func envName(flag string) string {
	return "QUORUMKV_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyConfig sets every flag of cmd that the command line left unset
// from the environment, then from the file named by --config.
func applyConfig(cmd *cobra.Command, file string) error {
	fl := cmd.Flags()
	var errs []error
	fl.VisitAll(func(f *pflag.Flag) {
		if f.Changed || f.Name == "config" {
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if err := fl.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%w: %s: %w", errConfig, envName(f.Name), err))
			}
		}
	})
	if file == "" {
		file = os.Getenv(envName("config"))
	}
	if file == "" {
		return errors.Join(errs...)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("%w: --config: %w", errConfig, err))...)
	}
	var values map[string]any
	if err := yaml.Unmarshal(b, &values); err != nil {
		return errors.Join(append(errs, fmt.Errorf("%w: --config %s: %w", errConfig, file, err))...)
	}
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		f := fl.Lookup(name)
		switch {
		case f == nil || name == "config":
			errs = append(errs, fmt.Errorf("%w: --config %s: %q is not a flag of %s", errConfig, file, name, cmd.Name()))
			continue
		case f.Changed:
			continue // the command line or the environment set it
		}
		if err := fl.Set(name, configValue(values[name])); err != nil {
			errs = append(errs, fmt.Errorf("%w: --config %s: %s: %w", errConfig, file, name, err))
		}
	}
	return errors.Join(errs...)
}

// configValue renders a YAML value as a flag would read it; a list is
// joined with commas (join: [a:7946, b:7946]).
func configValue(v any) string {
	if list, ok := v.([]any); ok {
		parts := make([]string, len(list))
		for i, x := range list {
			parts[i] = fmt.Sprint(x)
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v)
}

// ESLint (flat config) for the web page's own JS: islr/serving/static/*.js, ES modules in the
// browser, and the Node parity tests of its twins (tests/parity/*.mjs). Run from the repository
// root: `make lint-js` (the config's paths are relative to it).
import js from "@eslint/js";
import globals from "globals";

export default [
  { ignores: ["islr/serving/static/vendor/**"] },
  {
    files: ["islr/serving/static/*.js"],
    ignores: ["islr/serving/static/sw.js"],
    ...js.configs.recommended,
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: { ...globals.browser },
    },
  },
  {
    files: ["islr/serving/static/sw.js"],
    ...js.configs.recommended,
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "script",
      globals: { ...globals.serviceworker },
    },
  },
  {
    files: ["tests/parity/*.mjs"],
    ...js.configs.recommended,
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: { ...globals.node },
    },
  },
];

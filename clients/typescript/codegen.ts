import type { CodegenConfig } from "@graphql-codegen/cli";

// The client the README recommends: graphql-codegen's client preset over the committed
// schema.graphql, every custom scalar mapped (strictScalars refuses an unmapped one).
const config: CodegenConfig = {
  schema: "../../schema.graphql",
  documents: ["src/**/*.ts", "!src/gql/**/*"],
  ignoreNoDocuments: false,
  generates: {
    "./src/gql/": {
      preset: "client",
      config: {
        strictScalars: true,
        scalars: {
          DateTime: "string",
          UUID: "string",
          JSON: "unknown",
          Money: "string",
          Decimal: "string",
        },
        enumsAsTypes: true,
        useTypeImports: true,
        skipTypename: false,
      },
    },
  },
};

export default config;

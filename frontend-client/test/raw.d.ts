// Vite's `?raw` imports: a file's text, for the test that compares generated sources.
declare module '*?raw' {
  const text: string;
  export default text;
}

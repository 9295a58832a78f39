export { preparation as default } from './apex.js';

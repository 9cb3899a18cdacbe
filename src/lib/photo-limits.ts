/** How many photos one fine-tune takes: the page's photo step and `npm run finetune` alike. */

/** More photos than this add little to a fine-tune of a few minutes and cost memory. */
export const MAX_PHOTOS = 50;

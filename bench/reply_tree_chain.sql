SELECT * FROM veritable.reply_tree(:chain_topic);

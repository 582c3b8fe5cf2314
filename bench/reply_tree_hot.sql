SELECT * FROM veritable.reply_tree(:hot_topic);

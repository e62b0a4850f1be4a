CREATE DATABASE giftbot_tracker;
